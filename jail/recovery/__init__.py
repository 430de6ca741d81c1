"""Undoing what a jail did: the trash, overlay workspaces and snapshots. Every input here is jail-made."""
