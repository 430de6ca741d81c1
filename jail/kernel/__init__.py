"""Thin ctypes wrappers for the kernel calls Python 3.11 lacks, one module each."""
