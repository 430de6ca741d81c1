"""shelljail's sandbox: namespaces, mounts, limits, the supervisor and the CLI."""

__version__ = "0.1.0"
