"""What a method declares about itself, for every front end (CLI, web page, exporter).

:class:`InferenceOption` is one typed keyword of ``Method.predict_ab``; a method lists them in
``Method.inference_options`` and the CLI's ``colorize`` options, ``fewcolor methods NAME`` and the
pipeline's conversion of image options are generated from those declarations. :func:`config_fields`
documents a method's config dataclass: every field's type, default, allowed values and doc, the doc
taken from ``metadata={"help": ...}`` or else from the field's ``#:`` comment (trailing, or on the
lines just above it).
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import math
import numbers
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: ``image-l``: an image whose lightness the method takes (normalised L ``(1,1,h,w)`` at the working
#: resolution); ``image-rgb``: an RGB image ``(3,H,W)`` in [0, 1] at its own size.
OptionKind = Literal["float", "int", "str", "bool", "image-l", "image-rgb"]
OPTION_KINDS: tuple[str, ...] = typing.get_args(OptionKind)


class InferenceOptionError(ValueError):
    """An inference option the method does not support, or a bad value for one."""


@dataclass(frozen=True)
class InferenceOption:
    """One keyword option of ``predict_ab``.

    ``default`` documents what the method uses when the option is not given (``None``: the option is
    off); the method applies it itself. ``minimum``/``maximum`` bound numbers (inclusive), ``choices``
    lists a ``str`` option's values. Image options arrive at ``predict_ab`` as tensors: the pipeline
    reads a path and, for ``image-l``, converts it to normalised L at the working resolution.
    ``sweep`` names a CLI option (e.g. ``variants``) that takes K and writes K outputs
    ``NAME_v1.png ... NAME_vK.png`` with this option set to 1..K. ``local_path``: a ``str`` option whose
    value, when it is not one of ``choices``, names a file on this machine (e.g. Exemplar's ``fallback``
    checkpoint); the command line takes such a path, front ends that take values from other people (the web
    page) accept only the ``choices`` (see :meth:`refuses_from_visitors`). Float values must be finite.
    ``parse``: a function that raises ``ValueError`` for a value it cannot use (e.g. a palette's text), so every
    front end refuses it before any image, in :meth:`check`.
    """

    name: str
    kind: OptionKind
    help: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    sweep: str | None = None
    local_path: bool = False
    parse: Callable[[Any], object] | None = dataclasses.field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"inference option name {self.name!r} must be a Python identifier")
        if self.kind not in OPTION_KINDS:
            raise ValueError(f"inference option {self.name!r}: kind {self.kind!r} is not one of {OPTION_KINDS}")
        if self.choices is not None and self.kind != "str":
            raise ValueError(f"inference option {self.name!r}: choices need kind 'str'")
        if self.sweep is not None and self.kind != "int":
            raise ValueError(f"inference option {self.name!r}: a sweep needs kind 'int'")
        if self.local_path and (self.kind != "str" or not self.choices):
            raise ValueError(f"inference option {self.name!r}: local_path needs kind 'str' and the choices that "
                             "are not paths")

    @property
    def is_image(self) -> bool:
        return self.kind.startswith("image")

    @property
    def as_l(self) -> bool:
        """True when the method takes the image's lightness (normalised L) rather than its RGB."""
        return self.kind == "image-l"

    @property
    def flag(self) -> str:
        """The command-line spelling, e.g. ``--global-from``."""
        return "--" + self.name.replace("_", "-")

    def refuses_from_visitors(self, value: Any) -> bool:
        """Whether a front end serving other people (the web page) must refuse ``value``: a ``local_path``
        option's value that is not one of its choices would name a file on the server's disk."""
        return self.local_path and value not in (self.choices or ())

    def check(self, value: Any, method: str) -> None:
        """Raise :class:`InferenceOptionError` when a scalar value breaks the declared range or choices, or a
        float option's value is not finite (NaN, ±inf), or a number option's value is not a number (e.g. the
        string ``"0.5"`` from Python code: the command line and the web page convert their text first)."""
        if self.kind in ("float", "int") and (isinstance(value, bool) or not isinstance(value, numbers.Real) or (
                self.kind == "int" and not isinstance(value, numbers.Integral))):
            wanted = "an integer" if self.kind == "int" else "a number"
            raise InferenceOptionError(f"{method}: {self.name} must be {wanted}, got {value!r}")
        if self.kind in ("float", "int"):
            if not math.isfinite(value):
                raise InferenceOptionError(f"{method}: {self.name} must be a finite number, got {value}")
            if self.minimum is not None and value < self.minimum:
                raise InferenceOptionError(f"{method}: {self.name} must be >= {self.minimum:g}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise InferenceOptionError(f"{method}: {self.name} must be <= {self.maximum:g}, got {value}")
        if self.choices is not None and isinstance(value, str) and value not in self.choices and not self.local_path:
            raise InferenceOptionError(f"{method}: {self.name} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.parse is not None:
            try:
                self.parse(value)
            except ValueError as exc:
                raise InferenceOptionError(f"{method}: {self.name}: {exc}") from None
        if self.kind == "image-rgb":
            self._refuse_grey(value, method)

    def _refuse_grey(self, value: Any, method: str) -> None:
        """An ``image-rgb`` option is a colour source (a reference): one that
        :func:`fewcolor.data.grey.is_grey` calls grey (the rule every folder scan uses; ``fewcolor adapt``
        skips such images) has no colour to give, and the result would be as grey as it. ``value``: an RGB
        tensor (3,H,W) or (1,3,H,W), or an image's path, which the error then names."""
        import os

        import torch

        from fewcolor.data.grey import is_grey

        name = f"the {self.name} image"
        if isinstance(value, (str, os.PathLike)):
            from fewcolor.io.image import DEFAULT_PIXEL_BUDGET, ImageReadError, read_rgb

            try:
                value, name = read_rgb(value, pixel_budget=DEFAULT_PIXEL_BUDGET), f"{self.name} {value}"
            except (ImageReadError, OSError) as exc:
                raise InferenceOptionError(f"{method}: {self.name} {value}: {exc}") from exc
        batch = value[None] if torch.is_tensor(value) and value.dim() == 3 else value
        is_rgb_batch = torch.is_tensor(batch) and batch.dim() == 4 and batch.shape[1] == 3
        if is_rgb_batch and bool(torch.as_tensor(is_grey(batch)).all()):
            raise InferenceOptionError(f"{method}: {name} looks grey (at most 1 % of its pixels have any colour), so "
                                       f"the result would be grey too: the {self.name} must be a colour image; give "
                                       "one whose colours the result should take")


@dataclass(frozen=True)
class ConfigField:
    """One field of a method's config dataclass, as ``fewcolor methods NAME`` shows it."""

    name: str
    type: str
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None


def _comment_docs(cls: type) -> dict[str, str]:
    """``#:`` comments of a class body's annotated fields (trailing, or on the lines just above)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    docs: dict[str, str] = {}
    above: list[str] = []
    field_name: str | None = None  # the field whose logical line we are on
    line_start = True
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.COMMENT and tok.string.startswith("#:"):
            text = tok.string[2:].strip()
            if field_name is not None:
                docs[field_name] = f"{docs[field_name]} {text}".strip() if field_name in docs else text
            else:
                above.append(text)
        elif tok.type == tokenize.NEWLINE:
            field_name, line_start = None, True
        elif tok.type in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT):
            continue
        elif line_start:
            line_start = False
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if tok.type == tokenize.NAME and tok.start[1] > 0 and nxt is not None and nxt.string == ":":
                field_name = tok.string
                if above:
                    docs[field_name] = " ".join(above)
            above = []
    return docs


def _choices(cls: type, f: dataclasses.Field[Any]) -> tuple[Any, ...] | None:
    if "choices" in f.metadata:
        return tuple(f.metadata["choices"])
    try:
        hint = typing.get_type_hints(cls).get(f.name)
    except (NameError, TypeError):
        return None
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    return None


def config_fields(config_cls: type) -> list[ConfigField]:
    """Every field of a config dataclass with its type, default, allowed values and doc."""
    docs: dict[str, str] = {}
    for klass in reversed(config_cls.__mro__):  # a subclass's comment wins over its base's
        if dataclasses.is_dataclass(klass):
            docs.update(_comment_docs(klass))
    out = []
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        doc = str(f.metadata.get("help", docs.get(f.name, "")))
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", repr(f.type))
        out.append(ConfigField(f.name, type_name, default, doc, _choices(config_cls, f)))
    return out


def option_table(methods: Mapping[str, Any]) -> dict[str, tuple[InferenceOption, list[str]]]:
    """The union of the methods' inference options: name -> (declaration, names of the methods taking it).

    ``methods`` maps method names to classes with an ``inference_options`` tuple. Two methods may share
    an option only with the same kind; the first declaration (by method name) is kept.
    """
    table: dict[str, tuple[InferenceOption, list[str]]] = {}
    for method_name in sorted(methods):
        for opt in methods[method_name].inference_options:
            if opt.name in table:
                first, users = table[opt.name]
                if first.kind != opt.kind or first.sweep != opt.sweep:
                    raise ValueError(
                        f"inference option {opt.name!r} is {first.kind} in {users[0]!r} but {opt.kind} in "
                        f"{method_name!r}; rename one of them"
                    )
                users.append(method_name)
            else:
                table[opt.name] = (opt, [method_name])
    return table


class ConfigError(ValueError):
    """A config value of the wrong type, or one that builds no usable network."""


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON-ish value fits a config field's type hint (bool is not an int; an int is a float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        if origin is tuple and args:
            return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
        return not args or all(_matches(v, args[0]) for v in value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this checker does not know: let the config class decide


def check_config_values(config_cls: type, values: Mapping[str, Any], method: str) -> None:
    """Raise :class:`ConfigError` for the first value that does not fit its field's type or choices."""
    try:
        hints = typing.get_type_hints(config_cls)
    except (NameError, TypeError):
        return
    for key, value in values.items():
        hint = hints.get(key)
        if hint is not None and not _matches(value, hint):
            shown = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
            raise ConfigError(f"{method}: config field {key} takes {shown}, got {value!r}; "
                              f"`fewcolor methods {method}` lists the fields")
