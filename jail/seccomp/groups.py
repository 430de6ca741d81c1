"""The named syscall groups of profiles, and the constants their argument rules compare.

Pure data, without libseccomp: the profile validates group names against these
(and its parsed-profile cache names this file), `learn` and the OCI import use them.
"""

from __future__ import annotations

NAMESPACE_FLAGS = (0x00000080, 0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                   0x40000000)  # CLONE_NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
AF_ALG, AF_VSOCK = 38, 40
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
HARMLESS_PERSONALITY_BITS = 0x20008  # PER_LINUX32 (8) and ADDR_NO_RANDOMIZE (0x20000); 0xffffffff queries

# A group entry is a syscall name, or (name, argument rule) for the rules above.
GROUPS: dict[str, tuple[str | tuple[str, str], ...]] = {
    "@mount": ("mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
               "move_mount", "open_tree", "mount_setattr"),
    "@namespaces": ("unshare", "setns", ("clone", "namespace-flags"), ("clone3", "enosys")),
    "@debug": ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"),
    "@perf": ("perf_event_open", "lookup_dcookie"),
    "@keyring": ("add_key", "request_key", "keyctl"),
    "@io_uring": ("io_uring_setup", "io_uring_enter", "io_uring_register"),
    "@bpf": ("bpf",),
    "@userfaultfd": ("userfaultfd",),
    "@handles": ("open_by_handle_at", "name_to_handle_at"),
    "@module": ("init_module", "finit_module", "delete_module"),
    "@reboot": ("reboot", "kexec_load", "kexec_file_load"),
    "@swap": ("swapon", "swapoff"),
    "@clock": ("settimeofday", "clock_settime", "clock_adjtime", "adjtimex"),
    "@accounting": ("acct", "quotactl", "quotactl_fd"),
    "@raw-io": ("iopl", "ioperm", "pciconfig_iobase", "pciconfig_read", "pciconfig_write"),
    "@privileged": ("sethostname", "setdomainname", "vhangup", "syslog", "nfsservctl", "fanotify_init",
                    "setns", "mbind", "set_mempolicy", "move_pages", "migrate_pages", "open_tree"),
    "@obsolete": ("uselib", "_sysctl", "sysfs", "ustat", "create_module", "get_kernel_syms", "query_module",
                  "afs_syscall", "tuxcall", "security", "vserver", "putpmsg", "getpmsg", "remap_file_pages"),
    "@cpu-emulation": ("modify_ldt", "vm86", "vm86old", "subpage_prot", "switch_endian"),
    "@tty-injection": (("ioctl", "tiocsti"),),
    "@exotic-sockets": (("socket", "af-vsock-alg"),),
    "@personality": (("personality", "unsafe"),),
}
S_ISUID, S_ISGID = 0o4000, 0o2000
# Every syscall that sets a file's mode, and the index of its mode argument: a mode with S_ISUID or
# S_ISGID fails, whatever the profile says (see setid_guard). open/openat read the mode only with
# O_CREAT or O_TMPFILE; the bits are refused always, which is simpler and costs one rule less.
SETID_MODE_ARGUMENT = {"chmod": 1, "fchmod": 1, "fchmodat": 2, "fchmodat2": 2, "creat": 1, "open": 2,
                       "openat": 3, "mkdir": 1, "mkdirat": 2, "mknod": 1, "mknodat": 2}
# Calls that can create a file with a mode the filter cannot read: openat2 (the mode is in a struct)
# fails with ENOSYS, so libc and runtimes fall back to openat; io_uring (IORING_OP_OPENAT, MKDIRAT)
# is refused.
SETID_UNREADABLE = {"openat2": "ENOSYS", "io_uring_setup": ""}

# Always allowed by an allow-list, and never recorded by `shelljail learn`: what exec, exit and a
# process start need, and the calls too frequent to route through the supervisor while learning.
CORE = ("read", "write", "close", "close_range", "exit", "exit_group", "rt_sigreturn", "rt_sigprocmask",
        "rt_sigaction", "brk", "mmap", "munmap", "mprotect", "execve", "execveat", "fstat", "newfstatat",
        "futex", "getpid", "gettid", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64",
        "getrandom", "lseek", "pread64", "access", "faccessat", "faccessat2", "openat", "statx", "readlink",
        "readlinkat", "getdents64", "fcntl", "dup", "dup2", "dup3", "pipe2", "wait4", "clock_gettime",
        "clock_nanosleep", "nanosleep", "sched_yield", "madvise", "getuid", "geteuid", "getgid", "getegid",
        "sendmsg", "getsockname")  # the command passes the filter's listener out after loading it

# In the core, but shown to the supervisor while learning: the files written and the programs run.
WATCHED = ("openat", "execve", "execveat")


def expand(names: tuple[str, ...]) -> list[str | tuple[str, str]]:
    out: list[str | tuple[str, str]] = []
    for name in names:
        out += list(GROUPS[name]) if name.startswith("@") else [name]
    return out


def names_in(entries: tuple[str, ...], argument_rules: bool = True) -> tuple[str, ...]:
    """The syscall names of profile entries, groups expanded; without `argument_rules`, only the
    syscalls denied whatever their arguments (clone is not, when only its namespace flags are)."""
    return tuple(dict.fromkeys(e if isinstance(e, str) else e[0] for e in expand(entries)
                               if argument_rules or isinstance(e, str)))
