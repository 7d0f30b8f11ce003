"""HTML inspectors of trained models."""
