"""Colorization methods: one file per method, found by the registry."""

from fewcolor.methods.base import InferenceOptionError, Method, Phase
from fewcolor.methods.registry import available_methods, build_method, get_method_class, register_method

__all__ = [
    "InferenceOptionError",
    "Method",
    "Phase",
    "available_methods",
    "build_method",
    "get_method_class",
    "register_method",
]
