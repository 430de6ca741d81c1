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
 *   answer:  everything up to the service's end of the connection (one recvmsg
 *            may bring only part: a cut argv would be another command), at
 *            most ANSWER_MAX bytes: 'A' (allow) then the names of the real
 *            shells whose fds it carries, in order ("A sh dash bash rbash"), the
 *            first being the one to run; or 'D' followed by the text to print on
 *            stderr; or 'R' like 'A', then a NUL and the argv to run the shell
 *            with instead (the command rewritten into a safer form).
 *
 * Bound over rm and unlink too (the trash; see jail/recovery/trash.py), it is a tool: it
 * knows by /proc/self/exe, and asks with "t", cwd, the tool's name, argv. The
 * answer: 'X' then stdout, stderr, the exit status (each NUL-terminated: the
 * supervisor did the work), or 'E' then stdout, stderr and the argv to run the
 * real tool with, whose fd it carries; or 'D' as above.
 *
 * Child shells (make's recipes, a script's subshells) need not be judged when
 * the profile says so; the supervisor then writes SHELLS_PATH ("name major
 * minor inode" per real shell). An allowed shell is given the real shells as
 * inherited fds (listed in SHELLJAIL_SHELL_FDS); a later launcher whose
 * ancestor *is* a real shell (its /proc/PID/exe, which the jail cannot forge)
 * runs the inherited fd without asking. Anything else takes the judged path.
 *
 * Freestanding: no C library. Every shell in the jail starts through this
 * program, and a static glibc costs about 0.5 ms to start, against 0.1 ms for
 * this; the few syscalls it needs are made directly (x86_64 and aarch64).
 * Built by `make setup`; interposer/launcher.py is the slower fallback.
 */
#include <linux/fcntl.h>
#include <linux/stat.h>
#include <sys/syscall.h>

#define SOCKET_PATH "/run/shelljail/decide.sock"
#define SHELLS_PATH "/run/shelljail/shells"
#define FDS_VARIABLE "SHELLJAIL_SHELL_FDS"
#define FIRST_KIT_FD 1000
#define MAX_SHELLS 8
#define EXIT_DENIED 126
#define REQUEST_MAX (1 << 20)
#define ANSWER_MAX (2 << 20)   /* the decision service sends no more (see interposer/service.py) */
#define MAX_ARGS 65536         /* ...nor an argv of more words */

typedef unsigned long size_t;
typedef long ssize_t;

/* ---- syscalls ---------------------------------------------------------------- */

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c,
                  x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
    return x0;
#else
#error "shelljail's launcher supports x86_64 and aarch64"
#endif
}
#define sys(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n and $-16, %rsp\n call start\n hlt\n");
#else
__asm__(".text\n.global _start\n_start:\n mov x29, #0\n mov x0, sp\n and sp, x0, #-16\n bl start\n");
#endif

/* The compiler may emit calls to these for struct copies and initialisers. */
void *memcpy(void *to, const void *from, size_t n) {
    char *t = to;
    const char *f = from;
    while (n--) *t++ = *f++;
    return to;
}
void *memset(void *to, int c, size_t n) {
    char *t = to;
    while (n--) *t++ = (char)c;
    return to;
}

static size_t length(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
static int starts(const char *s, const char *prefix) {
    while (*prefix) if (*s++ != *prefix++) return 0;
    return 1;
}

static void put(int fd, const char *s) {
    size_t n = length(s);
    while (n) {
        long w = sys(SYS_write, fd, s, n);
        if (w == -4) continue; /* EINTR */
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static char *decimal(long value, char *end) { /* writes backwards, returns the start */
    int negative = value < 0;
    unsigned long v = negative ? (unsigned long)-value : (unsigned long)value;
    *--end = 0;
    do { *--end = (char)('0' + v % 10); v /= 10; } while (v);
    if (negative) *--end = '-';
    return end;
}

static long number(const char **s) {
    long v = 0;
    while (**s >= '0' && **s <= '9') v = v * 10 + (*(*s)++ - '0');
    return v;
}

static void fail(const char *what, long error) {
    char digits[24];
    put(2, "shelljail: denied: the interposer cannot judge this command (");
    put(2, what);
    put(2, ": errno ");
    put(2, decimal(-error, digits + sizeof digits));
    put(2, "); nothing was run\n");
    sys(SYS_exit_group, EXIT_DENIED, 0, 0);
    for (;;) {}
}

static void execute(int fd, char **argv, char **envp) {
    sys6(SYS_execveat, fd, (long)"", (long)argv, (long)envp, AT_EMPTY_PATH, 0);
}

/* ---- the child-shell fast path ---------------------------------------------------- */

struct shell { char name[32]; unsigned major, minor; unsigned long long ino; };

static int identity(int dirfd, const char *path, int flags, struct statx *out) {
    return (int)sys6(SYS_statx, dirfd, (long)path, flags, STATX_INO, (long)out, 0);
}

static int is_real_shell(const struct statx *st, const struct shell *shells, int count) {
    for (int i = 0; i < count; i++)
        if (st->stx_ino == shells[i].ino && st->stx_dev_major == shells[i].major &&
            st->stx_dev_minor == shells[i].minor)
            return 1;
    return 0;
}

static int read_shells(struct shell *shells) {
    char buffer[1024];
    int fd = (int)sys(SYS_openat, AT_FDCWD, SHELLS_PATH, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* child shells are judged too */
    long got = sys(SYS_read, fd, buffer, sizeof buffer - 1);
    sys(SYS_close, fd, 0, 0);
    if (got <= 0) return 0;
    buffer[got] = 0;
    int count = 0;
    const char *p = buffer;
    while (*p && count < MAX_SHELLS) { /* "name major minor ino\n" */
        int n = 0;
        while (*p && *p != ' ' && n < 31) shells[count].name[n++] = *p++;
        shells[count].name[n] = 0;
        if (*p++ != ' ') return count;
        shells[count].major = (unsigned)number(&p);
        if (*p++ != ' ') return count;
        shells[count].minor = (unsigned)number(&p);
        if (*p++ != ' ') return count;
        shells[count].ino = (unsigned long long)number(&p);
        while (*p == '\n') p++;
        count++;
    }
    return count;
}

/* "/proc/PID/NAME" into path (48 bytes are enough for any pid). */
static void proc_path(long pid, const char *name, char *path) {
    char digits[24];
    char *d = decimal(pid, digits + sizeof digits);
    size_t n = 0;
    for (const char *s = "/proc/"; *s;) path[n++] = *s++;
    while (*d) path[n++] = *d++;
    path[n++] = '/';
    while (*name) path[n++] = *name++;
    path[n] = 0;
}

static long parent_of(long pid) {
    char path[48], buffer[512];
    proc_path(pid, "stat", path);
    int fd = (int)sys(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    long got = sys(SYS_read, fd, buffer, sizeof buffer - 1);
    sys(SYS_close, fd, 0, 0);
    if (got <= 0) return 0;
    buffer[got] = 0;
    const char *close = 0;
    for (const char *s = buffer; *s; s++) if (*s == ')') close = s;
    if (!close || !close[1] || !close[2] || !close[3]) return 0;
    const char *p = close + 4; /* ") S ppid" */
    while (*p == ' ') p++;
    return number(&p);
}

/* "rm" or "unlink" when this program stands in for that tool, else 0 (a shell). */
static const char *tool_name(char *buffer, size_t size) {
    long n = sys6(SYS_readlinkat, AT_FDCWD, (long)"/proc/self/exe", (long)buffer, (long)(size - 1), 0, 0);
    if (n <= 0) return 0;
    buffer[n] = 0;
    const char *base = buffer;
    for (const char *s = buffer; *s; s++) if (*s == '/') base = s + 1;
    if ((length(base) == 2 && starts(base, "rm")) || (length(base) == 6 && starts(base, "unlink"))) return base;
    return 0;
}

static void child_shell_fast_path(char **argv, char **envp) {
    struct shell shells[MAX_SHELLS];
    int count = read_shells(shells);
    if (count == 0) return;
    const char *fds = 0;
    for (char **e = envp; *e; e++)
        if (starts(*e, FDS_VARIABLE "=")) fds = *e + sizeof FDS_VARIABLE;
    if (!fds) return;
    const char *wanted = argv[0];
    for (const char *s = argv[0]; *s; s++) if (*s == '/') wanted = s + 1;
    int fd = -1;
    for (const char *p = fds; *p;) { /* "bash:1000,dash:1001,..." */
        const char *name = p;
        while (*p && *p != ':') p++;
        if (!*p) break;
        size_t n = (size_t)(p - name);
        p++;
        long value = number(&p);
        if (n == length(wanted) && starts(name, wanted)) { fd = (int)value; break; }
        while (*p && *p != ',') p++;
        if (*p) p++;
    }
    struct statx st;
    if (fd < 0 || identity(fd, "", AT_EMPTY_PATH, &st) < 0 || !is_real_shell(&st, shells, count)) return;
    for (long pid = sys(SYS_getppid, 0, 0, 0); pid > 1; pid = parent_of(pid)) {
        char path[48];
        struct statx exe;
        proc_path(pid, "exe", path);
        if (identity(AT_FDCWD, path, 0, &exe) == 0 && is_real_shell(&exe, shells, count)) {
            execute(fd, argv, envp);
            return; /* fall back to asking */
        }
    }
}

/* ---- asking the decision service ------------------------------------------------------ */

struct sockaddr_un_ { unsigned short family; char path[108]; };
struct iovec_ { void *base; size_t len; };
struct msghdr_ { void *name; unsigned namelen; struct iovec_ *iov; size_t iovlen; void *control; size_t controllen;
                 int flags; };
struct cmsghdr_ { size_t len; int level; int type; };
#define SOL_SOCKET_ 1
#define SCM_RIGHTS_ 1
#define MSG_CMSG_CLOEXEC_ 0x40000000
#define AF_UNIX_ 1
#define SOCK_STREAM_ 1
#define SOCK_CLOEXEC_ 02000000

static char request[REQUEST_MAX];
static char answer[ANSWER_MAX + 1];
static char *environment[4096];
static char kit_variable[256];

/* The real shells, kept open without close-on-exec for this shell's child shells. */
static char **hand_down(int *fds, int count, char *names, char **envp) {
    size_t n = 0;
    for (const char *s = FDS_VARIABLE "="; *s;) kit_variable[n++] = *s++;
    char *name = names;
    for (int i = 0; i < count && *name; i++) {
        char *end = name;
        while (*end && *end != ' ') end++;
        char saved = *end;
        *end = 0;
        if (sys(SYS_dup3, fds[i], FIRST_KIT_FD + i, 0) < 0) return envp;
        if (n + length(name) + 24 >= sizeof kit_variable) return envp;
        if (i) kit_variable[n++] = ',';
        for (const char *s = name; *s;) kit_variable[n++] = *s++;
        kit_variable[n++] = ':';
        char digits[24];
        for (const char *s = decimal(FIRST_KIT_FD + i, digits + sizeof digits); *s;) kit_variable[n++] = *s++;
        *end = saved;
        name = saved ? end + 1 : end;
    }
    kit_variable[n] = 0;
    size_t e = 0;
    for (char **p = envp; *p && e < 4094; p++)
        if (!starts(*p, FDS_VARIABLE "=")) environment[e++] = *p;
    environment[e++] = kit_variable;
    environment[e] = 0;
    return environment;
}

static char *tool_argv[MAX_ARGS + 1];

/* The NUL-terminated words from p to end as an argv; all of them, or fail: a cut argv is another command. */
static char **words(char *p, char *end) {
    int n = 0;
    while (p < end) {
        if (n == MAX_ARGS) fail("bad answer: too many words", -7);
        tool_argv[n++] = p;
        while (p < end && *p) p++;
        p++;
    }
    tool_argv[n] = 0;
    if (n == 0) fail("bad answer", -71);
    return tool_argv;
}

/* The tool's answer: print what the supervisor says, then exit or run the real tool. */
static void tool_answer(long got, int fd, char **envp) {
    char *fields[3];
    char *p = answer + 1, *end = answer + got;
    for (int i = 0; i < 3; i++) {
        fields[i] = p;
        while (p < end && *p) p++;
        if (p >= end) fail("bad answer", -71);
        p++;
    }
    if (answer[0] == 'X') {
        put(1, fields[0]);
        put(2, fields[1]);
        const char *digits = fields[2];
        sys(SYS_exit_group, number(&digits), 0, 0);
    }
    put(1, fields[0]);
    put(2, fields[1]);
    char **run = words(fields[2], end); /* fields[2] starts the argv */
    if (fd < 0) fail("bad answer", -71);
    execute(fd, run, envp);
    fail("execute the real tool", -2);
}

void start(long *stack) {
    int argc = (int)stack[0];
    char **argv = (char **)(stack + 1);
    char **envp = argv + argc + 1;
    char exe[4096];
    const char *tool = tool_name(exe, sizeof exe);
    if (!tool) child_shell_fast_path(argv, envp);

    size_t used = 4;
    char cwd[4096];
    if (sys(SYS_getcwd, cwd, sizeof cwd, 0) <= 0) { cwd[0] = '/'; cwd[1] = 0; }
    const char *first[3] = {tool ? "t" : "1", cwd, tool};
    int leading = tool ? 3 : 2;
    for (int i = 0; i < leading + argc; i++) {
        const char *field = i < leading ? first[i] : argv[i - leading];
        size_t n = length(field) + 1;
        if (used + n > sizeof request) fail("command line too long", -7);
        memcpy(request + used, field, n);
        used += n;
    }
    unsigned size = (unsigned)(used - 4);
    memcpy(request, &size, 4);

    int sock = (int)sys(SYS_socket, AF_UNIX_, SOCK_STREAM_ | SOCK_CLOEXEC_, 0);
    if (sock < 0) fail("socket", sock);
    struct sockaddr_un_ address = {AF_UNIX_, {0}};
    memcpy(address.path, SOCKET_PATH, sizeof SOCKET_PATH);
    long r = sys(SYS_connect, sock, &address, sizeof address);
    if (r < 0) fail("connect " SOCKET_PATH, r);
    for (size_t sent = 0; sent < used;) {
        long w = sys(SYS_write, sock, request + sent, used - sent);
        if (w == -4) continue;
        if (w <= 0) fail("send", w);
        sent += (size_t)w;
    }

    union { struct cmsghdr_ header; char space[sizeof(struct cmsghdr_) + sizeof(int) * MAX_SHELLS + 8]; } control;
    struct iovec_ iov = {answer, ANSWER_MAX};
    struct msghdr_ msg = {0, 0, &iov, 1, &control, sizeof control, 0};
    long got;
    do got = sys(SYS_recvmsg, sock, &msg, MSG_CMSG_CLOEXEC_); while (got == -4);
    if (got <= 0) fail("answer", got ? got : -104);
    for (;;) { /* the rest, to the service's end of the connection: one recvmsg may bring only part */
        if (got >= ANSWER_MAX) fail("answer too long", -90);
        long more = sys(SYS_read, sock, answer + got, ANSWER_MAX - got);
        if (more == -4) continue;
        if (more < 0) fail("answer", more);
        if (more == 0) break;
        got += more;
    }
    answer[got] = 0;
    sys(SYS_close, sock, 0, 0);

    if (tool && (answer[0] == 'X' || answer[0] == 'E')) {
        int fd = -1;
        if (answer[0] == 'E' && msg.controllen >= sizeof(struct cmsghdr_) && control.header.level == SOL_SOCKET_ &&
            control.header.type == SCM_RIGHTS_)
            memcpy(&fd, control.space + sizeof(struct cmsghdr_), sizeof(int));
        tool_answer(got, fd, envp);
    }

    if (answer[0] == 'A' || answer[0] == 'R') {
        if (msg.controllen < sizeof(struct cmsghdr_) || control.header.level != SOL_SOCKET_ ||
            control.header.type != SCM_RIGHTS_)
            fail("no shell in the answer", -71);
        int count = (int)((control.header.len - sizeof(struct cmsghdr_)) / sizeof(int));
        if (count < 1 || count > MAX_SHELLS) fail("bad answer", -71);
        int fds[MAX_SHELLS];
        memcpy(fds, control.space + sizeof(struct cmsghdr_), sizeof(int) * (size_t)count);
        if (count > 1 && answer[1] == ' ') envp = hand_down(fds + 1, count - 1, answer + 2, envp);
        if (answer[0] == 'R') { /* the command rewritten: "R names\0" then the shell's new argv */
            char *p = answer + 1, *end = answer + got;
            while (p < end && *p) p++;
            argv = words(p + 1, end);
        }
        execute(fds[0], argv, envp);
        fail("execute the shell", -2);
    }
    if (answer[0] == 'D') {
        put(2, answer + 1);
        if (got == 1 || answer[got - 1] != '\n') put(2, "\n");
        sys(SYS_exit_group, EXIT_DENIED, 0, 0);
    }
    fail("unexpected answer", -71);
}
