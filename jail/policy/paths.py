"""Paths that mean something wherever they are judged: credentials, start-up files, caches, scratch.

The interposer's rules, the trash (which caches need no keeping), doctor (which
credentials a profile would show) and the hooks all read them from here, so that
what counts as a credential is written once.
"""

from __future__ import annotations

# Regenerable caches: deleting them inside the workspace loses nothing a build cannot remake.
CACHE_DIRS = frozenset({"target", "node_modules", "__pycache__", "build", "dist", ".pytest_cache", ".mypy_cache",
                        ".ruff_cache", ".tox", ".nox", ".gradle", ".next", ".nuxt", ".parcel-cache", ".cache",
                        "coverage", "htmlcov", ".eggs", "cmake-build-debug", "cmake-build-release", ".turbo",
                        ".svelte-kit", ".angular", "out", "_build", ".hypothesis"})
CACHE_SUFFIXES = (".egg-info", ".pyc", ".pyo")
# The jail's private scratch space: writing or deleting there harms nothing.
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty",
           "/dev/fd", "/proc/self/fd")
# The system's secrets, absolute (a prefix covers what is under it).
SYSTEM_CREDENTIALS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers",
                      "/etc/sudoers.d", "/etc/security/opasswd", "/etc/krb5.keytab", "/etc/ssl/private",
                      "/var/lib/sss/secrets")
# What the system runs or trusts by itself, at boot, on a schedule or at a login: planting a line in one is
# the classic foothold. Writes there are denied anyway; a program merely handed one of these paths
# (`iptables-save -f`, `nmap -oG=`, `history -w`, `tar --xform`) is asked about (rule names-startup-file).
SYSTEM_STARTUP = ("/etc/crontab", "/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
                  "/etc/cron.monthly", "/var/spool/cron", "/etc/anacrontab", "/etc/systemd", "/lib/systemd/system",
                  "/usr/lib/systemd/system", "/etc/init.d", "/etc/rc.local", "/etc/profile", "/etc/profile.d",
                  "/etc/bash.bashrc", "/etc/environment", "/etc/ld.so.preload", "/etc/pam.d", "/etc/sudoers",
                  "/etc/sudoers.d", "/etc/update-motd.d", "/etc/xdg/autostart", "/etc/udev/rules.d",
                  "/etc/modules-load.d", "/etc/modprobe.d", "/etc/shadow", "/etc/gshadow", "/root/.ssh",
                  "/root/.bashrc", "/root/.profile", "/etc/at.allow", "/var/spool/at", "/etc/security")
# Credential files a profile could expose from the caller's home (relative to it).
CREDENTIALS = (".ssh", ".aws", ".config/gcloud", ".kube", ".docker/config.json", ".netrc", ".git-credentials",
               ".gnupg", ".bash_history", ".zsh_history", ".python_history", ".npmrc", ".pypirc",
               ".config/gh/hosts.yml", ".cargo/credentials.toml", ".cargo/credentials")
# In the jail's private home these still count as outside the workspace when written: what a shell
# runs at its start, what runs on its own, and the files from which a program runs commands when it
# starts (less's filter, top's and rtorrent's rc files, git's config with its aliases and pager, an
# editor's or debugger's init). Hardly any coding task writes them; a planted alias is a classic
# foothold, and hooks judge the same lines against a real home.
STARTUP_FILES = (".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".bash_aliases", ".profile", ".zshrc",
                 ".zshenv", ".zprofile", ".zlogin", ".cshrc", ".tcshrc", ".kshrc", ".inputrc", ".config/fish",
                 ".config/autostart", ".config/systemd", ".local/share/systemd", ".config/environment.d",
                 ".xinitrc", ".xsession", ".xprofile", ".lessfilter", ".toprc", ".config/procps", ".rtorrent.rc",
                 ".gitconfig", ".config/git", ".gdbinit", ".config/gdb", ".vimrc", ".exrc", ".config/nvim",
                 ".emacs", ".emacs.d", ".tmux.conf", ".config/tmux", ".screenrc", ".mailcap", ".psqlrc",
                 ".sqliterc", ".irbrc", ".pryrc", ".Rprofile")


def is_cache_path(relative: str) -> bool:
    """Whether a path inside the workspace (relative to it) lies in a regenerable cache."""
    return any(part in CACHE_DIRS or part.endswith(CACHE_SUFFIXES) for part in relative.split("/"))
