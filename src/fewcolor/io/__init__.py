"""Image and checkpoint I/O."""
