"""The host side of a run: the parent process, its audit log, approvals, proxy, session and terminal."""
