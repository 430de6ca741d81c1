"""The syscall lab: learn what a command needs and write the tightest profile for it."""
