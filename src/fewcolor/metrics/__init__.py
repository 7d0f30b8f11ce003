"""Colorization metrics (one definition each)."""
