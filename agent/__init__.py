"""The reference agent on a local model (in progress)."""
