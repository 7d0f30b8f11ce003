"""Speed benchmark (issue #18): measurement parts that each print rows of one table.

Each part is a module in this package with ``measure(quick: bool) -> list[Row]``; ``scripts/speed.py`` runs
them in order on the machine at hand. A row carries its target (when the issue sets one) so the table says
plainly which targets are met here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

# Order of the printed table; a part missing from the package is skipped with a note. Training runs last:
# it keeps the freed memory in the process as `fewcolor train` does (fewcolor.train.allocator), a setting
# that cannot be undone and that the other parts, timed as the CLI runs them, should not inherit.
PARTS = ("gemm", "setup", "inference", "retrieval", "training")


@dataclass(frozen=True)
class Row:
    """One measured quantity: ``value`` in ``unit``; ``target`` (same unit) with ``higher_is_better``."""

    part: str
    name: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


def part(name: str) -> Callable[[bool], list[Row]] | None:
    """The ``measure`` function of part ``name``, or None when this checkout has no such part."""
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name == f"{__name__}.{name}":
            return None
        raise
    measure: Callable[[bool], list[Row]] = module.measure
    return measure
