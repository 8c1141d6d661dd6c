"""The state of one check: its options, each case × device × dtype group and what each path
has shown so far in it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._compare import Comparison
from ._report import Record
from ._tolerances import Tolerance

if TYPE_CHECKING:
    import torch

    from ._case import Case
    from .paths._base import AutogradPath


@dataclass
class _Options:
    """The options of one check, resolved and validated (`verijac._runner.run`)."""

    seed: int
    max_examples: int
    batch_size: int
    unbatched_points: int
    #: Points a second-order or tracing path sees (`verijac._evaluate._point_cap`).
    costly_points: int
    #: `Profile.pieces`: the sizes the first chunk is cut into (``None``: by batch count).
    pieces: tuple[int, ...] | None
    profile: str
    pointwise: bool
    require: frozenset[str]
    tolerances: dict[str, dict[str, dict[str, float]]]
    command: str
    reproduce_prefix: str | None
    deadline: float | None
    tf32: bool
    on_record: Callable[[Record], Any] | None
    reference_digits: int | None = None
    jobs: int = 1  # worker processes (`verijac._parallel`)


@dataclass
class _PathState:
    """What one path has shown so far in one case × device × dtype."""

    path: AutogradPath
    tolerance: Tolerance
    status: str | None = None  # None while still being checked
    points: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0  # seconds spent in this path's calls and comparisons
    #: Seconds one call of the path may take (``None``: unbounded); set from the time budget.
    timeout: float | None = None
    warnings: set[str] = field(default_factory=set)  # distinct warnings torch raised in the path

    def add(self, cmp: Comparison, n: int) -> None:
        self.points += n
        self.max_abs = max(self.max_abs, cmp.max_abs)
        self.max_rel = max(self.max_rel, cmp.max_rel)
        self.max_ulp = max(self.max_ulp, cmp.max_ulp)

    def finish(self, status: str, reason: str = "", **kw: Any) -> None:
        self.status = status
        self.fields = {"reason": reason, **kw}


@dataclass
class _Group:
    """One case × device × dtype: its paths, function and options."""

    case: Case
    device: str
    dtype: str
    func: Callable[..., Any]
    states: list[_PathState]
    opts: _Options
    batches: int = 0  # drawn so far
    chunks: int = 0  # evaluated so far (drawn batches merged: `_Drawn`)
    where: str = ""  # the drawn batches of the chunk being evaluated, for messages
    #: Kinds of op in the function's autograd graph (`verijac._defects.op_kinds`), found at
    #: the first batch; known torch defects may be scoped by them.
    op_kinds: frozenset[str] = frozenset()

    @cached_property
    def tdtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype)

    @property
    def active(self) -> list[_PathState]:
        return [s for s in self.states if s.status is None]
