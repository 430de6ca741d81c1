"""The shell interposer: parses and judges each command the model emits (in progress)."""
