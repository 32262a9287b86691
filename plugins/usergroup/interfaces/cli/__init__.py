"""The `usergroup` command."""
