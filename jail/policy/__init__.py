"""What a run may do: profiles, the view of the file system, the environment and secrets; pure data, no kernel calls."""
