"""Pretrained backbones and weight resolution."""
