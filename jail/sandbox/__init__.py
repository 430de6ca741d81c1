"""The jail itself: namespaces, mounts, limits, Landlock and the jail's pid 1, in the order sequence.py tells."""
