/*
 * shelljail's shell entry: bound over /bin/sh, /bin/bash and their twins inside
 * the jail. It asks the decision service (the supervisor, outside the jail) about
 * its own command line and, if allowed, executes the real shell from a file
 * descriptor the service sends back: the real shells have no path in the jail,
 * so nothing reaches them without a decision. Anything unexpected fails closed
 * with exit 126.
 *
 * Protocol (one request, one answer per connection, on SOCKET_PATH):
 *   request: uint32 length (native order), then NUL-terminated fields:
 *            "1" (version), cwd, argv[0], argv[1], ... argv[argc-1]
 *   answer:  one message: 'A' (allow) then the names of the real shells whose
 *            fds it carries, in order ("A sh dash bash rbash"), the first being
 *            the one to run; or 'D' followed by the text to print on stderr.
 *
 * Child shells (make's recipes, a script's subshells) need not be judged when
 * the profile says so; the supervisor then writes SHELLS_PATH ("name dev ino"
 * per real shell). An allowed shell is given the real shells as inherited fds
 * (listed in SHELLJAIL_SHELL_FDS); a later launcher whose ancestor *is* a real
 * shell (its /proc/PID/exe, which the jail cannot forge) runs the inherited fd
 * without asking. Anything else takes the slow, judged path.
 * Built by `make setup`; interposer/launcher.py is the slower fallback.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCKET_PATH "/run/shelljail/decide.sock"
#define SHELLS_PATH "/run/shelljail/shells"
#define FDS_VARIABLE "SHELLJAIL_SHELL_FDS"
#define FIRST_KIT_FD 1000
#define MAX_SHELLS 8
#define EXIT_DENIED 126
#define MAX_REQUEST (8 << 20)

extern char **environ;

static void fail(const char *what) {
    dprintf(2, "shelljail: denied: the interposer cannot judge this command (%s: %s); "
               "nothing was run\n", what, strerror(errno));
    _exit(EXIT_DENIED);
}

static int write_all(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        data += n;
        size -= (size_t)n;
    }
    return 0;
}

struct shell { char name[32]; dev_t dev; ino_t ino; };

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* The real shells, from the file the supervisor wrote; 0 when child shells are judged. */
static int read_shells(struct shell *shells) {
    FILE *file = fopen(SHELLS_PATH, "re");
    if (!file) return 0;
    int count = 0;
    unsigned long long dev, ino;
    while (count < MAX_SHELLS && fscanf(file, "%31s %llu %llu", shells[count].name, &dev, &ino) == 3) {
        shells[count].dev = (dev_t)dev;
        shells[count].ino = (ino_t)ino;
        count++;
    }
    fclose(file);
    return count;
}

static pid_t parent_of(pid_t pid) {
    char path[64], buffer[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    if (n <= 0) return 0;
    buffer[n] = '\0';
    char *end = strrchr(buffer, ')');
    int ppid = 0;
    if (!end || sscanf(end + 2, "%*c %d", &ppid) != 1) return 0;
    return (pid_t)ppid;
}

static int is_real_shell(const struct stat *st, const struct shell *shells, int count) {
    for (int i = 0; i < count; i++)
        if (st->st_dev == shells[i].dev && st->st_ino == shells[i].ino) return 1;
    return 0;
}

/* Run the inherited real shell if an ancestor is a real shell; return if not. */
static void child_shell_fast_path(char **argv) {
    struct shell shells[MAX_SHELLS];
    int count = read_shells(shells);
    const char *fds = getenv(FDS_VARIABLE);
    if (count == 0 || !fds) return;
    const char *wanted = base_name(argv[0]);
    char pattern[40];
    snprintf(pattern, sizeof pattern, "%s:", wanted);
    const char *entry = fds;
    int fd = -1;
    while (entry && *entry) {  /* "sh:1000,dash:1000,bash:1001" */
        if (strncmp(entry, pattern, strlen(pattern)) == 0) { fd = atoi(entry + strlen(pattern)); break; }
        entry = strchr(entry, ',');
        if (entry) entry++;
    }
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !is_real_shell(&st, shells, count)) return;
    for (pid_t pid = getppid(); pid > 1; pid = parent_of(pid)) {
        char path[64];
        struct stat exe;
        snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
        if (stat(path, &exe) == 0 && is_real_shell(&exe, shells, count)) {
            syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
            return;  /* fall back to asking */
        }
    }
}

/* Keep the real shells open, uncloseable-on-exec, for the child shells of this one. */
static void hand_down(int *fds, int count, char *names) {
    char value[256] = "";
    char *name = strtok(names, " ");
    for (int i = 0; i < count && name; i++, name = strtok(NULL, " ")) {
        int target = FIRST_KIT_FD + i;
        if (dup2(fds[i], target) < 0) return;
        char item[48];
        snprintf(item, sizeof item, "%s%s:%d", value[0] ? "," : "", name, target);
        strncat(value, item, sizeof value - strlen(value) - 1);
    }
    setenv(FDS_VARIABLE, value, 1);
}

int main(int argc, char **argv) {
    child_shell_fast_path(argv);

    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");

    size_t size = 2 + strlen(cwd) + 1;
    for (int i = 0; i < argc; i++) size += strlen(argv[i]) + 1;
    if (size > MAX_REQUEST) { errno = E2BIG; fail("command line"); }
    char *request = malloc(4 + size);
    if (!request) fail("malloc");
    uint32_t length = (uint32_t)size;
    memcpy(request, &length, 4);
    char *p = request + 4;
    memcpy(p, "1", 2); p += 2;
    size_t n = strlen(cwd) + 1; memcpy(p, cwd, n); p += n;
    for (int i = 0; i < argc; i++) { n = strlen(argv[i]) + 1; memcpy(p, argv[i], n); p += n; }

    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) fail("socket");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, SOCKET_PATH, sizeof addr.sun_path - 1);
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) fail("connect " SOCKET_PATH);
    if (write_all(sock, request, 4 + size) < 0) fail("send");

    char answer[65536];
    char control[CMSG_SPACE(sizeof(int) * MAX_SHELLS)];
    struct iovec iov = {.iov_base = answer, .iov_len = sizeof answer - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof control};
    ssize_t got;
    do { got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (got < 0 && errno == EINTR);
    if (got <= 0) { if (got == 0) errno = ECONNRESET; fail("answer"); }
    answer[got] = '\0';

    if (answer[0] == 'A') {
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        if (!cmsg || cmsg->cmsg_type != SCM_RIGHTS) { errno = EPROTO; fail("no shell in the answer"); }
        int fds[MAX_SHELLS];
        int count = (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        if (count < 1 || count > MAX_SHELLS) { errno = EPROTO; fail("bad answer"); }
        memcpy(fds, CMSG_DATA(cmsg), sizeof(int) * (size_t)count);
        close(sock);
        if (count > 1 && answer[1] == ' ') hand_down(fds + 1, count - 1, answer + 2);
        syscall(SYS_execveat, fds[0], "", argv, environ, AT_EMPTY_PATH);
        fail("execute the shell");
    }
    if (answer[0] == 'D') {
        size_t len = (size_t)got - 1;
        write_all(2, answer + 1, len);
        if (len == 0 || answer[got - 1] != '\n') write_all(2, "\n", 1);
        _exit(EXIT_DENIED);
    }
    errno = EPROTO;
    fail("unexpected answer");
    return EXIT_DENIED;
}
