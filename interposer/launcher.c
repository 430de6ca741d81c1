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
 *   answer:  one message: 'A' (allow; carries the real shell's fd) or
 *            'D' followed by the text to print on stderr (deny).
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
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCKET_PATH "/run/shelljail/decide.sock"
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

int main(int argc, char **argv) {
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
    char control[CMSG_SPACE(sizeof(int))];
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
        int shell;
        memcpy(&shell, CMSG_DATA(cmsg), sizeof shell);
        close(sock);
        syscall(SYS_execveat, shell, "", argv, environ, AT_EMPTY_PATH);
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
