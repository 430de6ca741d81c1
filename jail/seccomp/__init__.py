"""Seccomp: the named syscall groups and filters, the OCI import, and the learning lab's user notifications."""
