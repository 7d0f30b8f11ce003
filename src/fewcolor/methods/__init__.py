"""Colorization methods: one file per method, found by the registry."""

from fewcolor.methods.base import InferenceOption, InferenceOptionError, Method, Phase
from fewcolor.methods.registry import (
    available_methods,
    build_method,
    get_method_class,
    inference_option_table,
    register_method,
)

__all__ = [
    "InferenceOption",
    "InferenceOptionError",
    "Method",
    "Phase",
    "available_methods",
    "build_method",
    "get_method_class",
    "inference_option_table",
    "register_method",
]
