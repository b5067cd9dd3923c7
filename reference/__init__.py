"""Reference backends of sessionspec v1."""
