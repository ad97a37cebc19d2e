"""Whole images: push and pull, copying between registries, diffs, signatures made with the local gpg."""
