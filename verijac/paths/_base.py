"""What an autograd path is, what it receives, and the registry of paths.

A path takes a `Problem` (the function under test and a batch of points) and returns its
result in a canonical flat layout, so every path compares against one exact reference. The
layout and the exact reference of each kind of result (``computes``: ``jacobian``, ``jvp``,
``vjp``, …) are in `verijac._kinds`, one `Kind` record per kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._errors import UnknownPathError, UsageError
from .._kinds import KINDS
from .._layout import Layout, ranges
from .._layout import Shape as Shape
from .._layout import size as _size

if TYPE_CHECKING:
    import torch

FAMILIES = ("reverse", "forward", "functional", "func", "higher-order", "compiled", "contract")
#: The result kinds a path may compute (`verijac._kinds.KINDS`).
COMPUTES = tuple(k.name for k in KINDS)
#: The commands whose default selection a path can belong to (`AutogradPath.default_for`).
COMMANDS = ("check", "check-op")
#: Requirements a path may declare; the runner reports `unsupported` when the case lacks one.
REQUIREMENTS = ("scalar_output", "pointwise", "unused_input", "array_input")
#: Torch capabilities a path relies on. A function lacking one (no forward-mode rule, no vmap
#: support, not twice differentiable) makes the path `unsupported`, unless the user declares
#: the capability required (``check_op(..., require=("forward_ad",))``): then it is a failure.
CAPABILITIES = ("forward_ad", "vmap", "double_backward", "compile")


class Unsupported(Exception):
    """Raised by a path that cannot apply to this function; the message is the reason."""


class BehaviourMismatch(Exception):
    """Raised by a path when torch does not show a documented behaviour (e.g. accumulation)."""


@dataclass(frozen=True)
class PathResult:
    """A path's value, with the points it was computed at when they differ from the problem's."""

    value: torch.Tensor
    inputs: tuple[torch.Tensor, ...] | None = None


class Truth(Protocol):
    """The exact math a problem is checked against, as paths that need it directly (the
    ``contract`` family) see it; `verijac._reference.make_problem` provides it. Paths depend
    on this protocol, not on the reference module behind it."""

    @property
    def input_names(self) -> Sequence[str]:
        """The case's input names, for messages."""
        ...

    @property
    def cond_ulps(self) -> float:
        """Roundoffs of the inputs' dtype that bound what rounding the inputs forces."""
        ...

    def values(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The exact outputs at ``inputs``, flattened to ``(N, m)`` float64."""
        ...

    def jacobian(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The exact Jacobian at ``inputs``, flattened to ``(N, m, n)`` float64."""
        ...

    def tolerance(self, dtype: torch.dtype, order: int, *, own: bool = True) -> tuple[float, float]:
        """``(rtol, atol)`` of results of derivative ``order`` in ``dtype``: verijac's table,
        with the case's own tolerances applied when ``own``."""
        ...


@dataclass
class Problem:
    """What a path receives: the function under test and a batch of points.

    Attributes:
        func: the function under test, called with one tensor per input. When ``pointwise``
            it accepts leading batch dimensions and maps each point independently.
        inputs: one tensor per input, shaped ``(N, *in_shape)``, not requiring grad.
        in_shapes / out_shapes: the case's per-point shapes.
        tuple_inputs / tuple_outputs: whether torch sees a tuple (nesting of results).
        tangents: ``(N, n)`` random tangents; cotangents: ``(N, m)`` random cotangents.
        pointwise: whether row ``i`` of the outputs depends on row ``i`` of the inputs only,
            which makes the summed-output trick valid (see docs/paths.md).
        unused_inputs: per input, whether no output depends on it (for ``strict=True``).
        truth: the exact math (`Truth`), for paths that compare inside themselves.
    """

    func: Callable[..., Any]
    inputs: tuple[torch.Tensor, ...]
    in_shapes: tuple[Shape, ...]
    out_shapes: tuple[Shape, ...]
    tuple_inputs: bool
    tuple_outputs: bool
    tangents: torch.Tensor
    cotangents: torch.Tensor
    pointwise: bool = True
    unused_inputs: tuple[bool, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    truth: Truth | None = None

    @property
    def N(self) -> int:
        return int(self.inputs[0].shape[0])

    @property
    def n(self) -> int:
        return self.layout.n

    @property
    def m(self) -> int:
        return self.layout.m

    @property
    def layout(self) -> Layout:
        """Where each output and input lies in the flat layout, and how torch nests blocks."""
        return Layout(
            self.out_shapes,
            self.in_shapes,
            tuple_outputs=self.tuple_outputs,
            tuple_inputs=self.tuple_inputs,
        )

    @property
    def scalar_output(self) -> bool:
        return not self.tuple_outputs and self.out_shapes[0] == ()

    # -- layout helpers -------------------------------------------------------------------------
    def split_inputs(self, flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(N, n)`` → one tensor per input shaped ``(N, *in_shape)``."""
        return split(flat, self.in_shapes)

    def split_outputs(self, flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(N, m)`` → one tensor per output shaped ``(N, *out_shape)``."""
        return split(flat, self.out_shapes)

    def flat_inputs(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """One tensor per input ``(N, *in_shape)`` → ``(N, n)``."""
        return flatten(tensors, self.in_shapes, 1)

    def flat_outputs(self, out: Any) -> torch.Tensor:
        """The function's return value (tensor or tuple), batched → ``(N, m)``."""
        import torch

        outs = out if self.tuple_outputs else (out,)
        return torch.cat([o.reshape(self.N, -1) for o in outs], dim=1)

    def as_args(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Inputs the way torch.autograd.functional passes them: a tensor or a tuple."""
        return tuple(tensors) if self.tuple_inputs else tensors[0]

    def flat_jacobian(self, nested: Any) -> torch.Tensor:
        """A Jacobian nested like torch.autograd.functional.jacobian → ``(N, m, n)``
        (`flat_jacobian` with this problem's shapes)."""
        return _flat(self.layout, nested, 1)

    def flat_hessian(self, nested: Any) -> torch.Tensor:
        """A Hessian nested as torch returns it → ``(N, m, n, n)`` (`flat_hessian` with this
        problem's shapes)."""
        return _flat(self.layout, nested, 2)

    def unbatched(self, i: int) -> tuple[torch.Tensor, ...]:
        """The inputs of point ``i`` without the batch dimension."""
        return tuple(x[i] for x in self.inputs)


def split(flat: torch.Tensor, shapes: Sequence[Shape]) -> tuple[torch.Tensor, ...]:
    """``(*B, total)`` → one tensor per shape, ``(*B, *shape)`` (``B`` may be empty)."""
    lead = tuple(flat.shape[:-1])
    return tuple(
        flat[..., r.start : r.stop].reshape((*lead, *s)) for s, r in zip(shapes, ranges(shapes))
    )


def flatten(
    tensors: Sequence[torch.Tensor], shapes: Sequence[Shape], batch_ndim: int
) -> torch.Tensor:
    """Tensors shaped ``(*B, *shape)`` → one ``(*B, total)`` tensor (``B`` has ``batch_ndim`` dims)."""
    import torch

    parts = [
        t.reshape((*t.shape[:batch_ndim], _size(s))) for t, s in zip(tensors, shapes, strict=True)
    ]
    return torch.cat(parts, dim=-1)


def flat_jacobian(
    nested: Any,
    out_shapes: Sequence[Shape],
    in_shapes: Sequence[Shape],
    *,
    tuple_outputs: bool,
    tuple_inputs: bool,
) -> torch.Tensor:
    """A Jacobian nested like torch.autograd.functional.jacobian → ``(N, m, n)``.

    Args:
        nested: blocks ``(*batch, *out_shape, *in_shape)`` nested [out][in], a level present
            only where the function returns / takes a tuple; a block with no batch dimension
            (one point) gets one added.
    """
    layout = Layout(
        tuple(out_shapes), tuple(in_shapes), tuple_outputs=tuple_outputs, tuple_inputs=tuple_inputs
    )
    return _flat(layout, nested, 1)


def flat_hessian(
    nested: Any,
    out_shapes: Sequence[Shape],
    in_shapes: Sequence[Shape],
    *,
    tuple_outputs: bool,
    tuple_inputs: bool,
) -> torch.Tensor:
    """A Hessian nested [out][in_i][in_j] (levels present as in torch) → ``(N, m, n, n)``.

    Blocks are ``(*batch, *out_shape, *in_i_shape, *in_j_shape)``; a block with no batch
    dimension (one point) gets one added. The output level is absent unless the function
    returns a tuple; the input levels are absent unless it takes several tensors.
    """
    layout = Layout(
        tuple(out_shapes), tuple(in_shapes), tuple_outputs=tuple_outputs, tuple_inputs=tuple_inputs
    )
    return _flat(layout, nested, 2)


def _flat(layout: Layout, nested: Any, order: int) -> torch.Tensor:
    """torch's nesting of derivative ``order`` → the flat ``(N, m, n[, n])`` tensor.

    Raises:
        ValueError: a level of ``nested`` holds more or fewer blocks than the layout has.
    """
    import torch

    matrices = []
    for block, b in zip(layout.blocks(order), layout.leaves(nested, order)):
        n_lead = b.dim() - len(block.shape)
        b = b.reshape((*b.shape[:n_lead], *block.sizes))
        matrices.append(b.unsqueeze(0) if n_lead == 0 else b)

    def joined(grid: Any, depth: int) -> torch.Tensor:
        if depth == 0:
            return grid
        return torch.cat([joined(g, depth - 1) for g in grid], dim=-depth)

    # [output][input]…: the innermost level joins along the last axis, the outputs along -order-1.
    return joined(layout.grid(matrices, order), order + 1)


@dataclass(frozen=True)
class AutogradPath:
    """One registered way of computing a derivative with PyTorch.

    Formerly ``Path`` (that name remains as an alias); renamed so that it no longer
    shadows `pathlib.Path` where both are used.

    Attributes:
        name: stable identifier, e.g. ``"func.vmap_jacrev"``.
        family: one of `FAMILIES`.
        computes: one of `COMPUTES`; fixes the result layout and the exact reference
            (`verijac._kinds`).
        call: the torch call, as a reader would write it.
        run: takes a `Problem`, returns a tensor (or `PathResult`) in the canonical layout.
        requires: requirements from `REQUIREMENTS` the case must meet.
        uses: torch capabilities from `CAPABILITIES` the path relies on.
        cost: function / backward / jvp calls for n inputs, m outputs, N points.
        batched: whether one call covers the whole batch; otherwise the runner gives the path
            a few points only.
        opt_in: run only when asked for by name or family (slow, e.g. compiled paths).
        traces: whether each call traces the function (``func.linearize``): a call costs the
            trace, whatever the points. In quick profiles such a path skips the one-row
            piece of a group's first chunk (`verijac._evaluate.PIECES`).
        description: what it checks, one line.
        default_for: the commands (`COMMANDS`) that run it when no path is named: the
            ``contract`` family checks a custom op's autograd contract and runs by default
            under ``check-op`` only.
    """

    name: str
    family: str
    computes: str
    call: str
    run: Callable[[Problem], torch.Tensor | PathResult | None]
    requires: frozenset[str] = frozenset()
    uses: frozenset[str] = frozenset()
    cost: str = ""
    batched: bool = True
    opt_in: bool = False
    description: str = ""
    default_for: frozenset[str] = frozenset({"check", "check-op"})
    traces: bool = False

    def __post_init__(self) -> None:
        unknown_commands = set(self.default_for) - set(COMMANDS)
        if unknown_commands:
            raise UsageError(
                f"path {self.name!r}: default_for names unknown commands "
                f"{sorted(unknown_commands)}; known: {COMMANDS}"
            )
        if self.family not in FAMILIES:
            raise UsageError(
                f"path {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}"
            )
        if self.computes not in COMPUTES:
            raise UsageError(
                f"path {self.name!r}: computes must be one of {COMPUTES}, got {self.computes!r}"
            )
        unknown = set(self.requires) - set(REQUIREMENTS)
        if unknown:
            raise UsageError(
                f"path {self.name!r}: unknown requirements {sorted(unknown)}; known: {REQUIREMENTS}"
            )
        unknown_uses = set(self.uses) - set(CAPABILITIES)
        if unknown_uses:
            raise UsageError(
                f"path {self.name!r}: unknown capabilities {sorted(unknown_uses)}; known: {CAPABILITIES}"
            )
        if not callable(self.run):
            raise UsageError(f"path {self.name!r}: run must be callable, got {self.run!r}")


#: The old name of `AutogradPath`, kept for existing code.
Path = AutogradPath


def selects(pattern: str, path: AutogradPath) -> bool:
    """Whether ``pattern`` (a path name, a family name or a glob on names) selects ``path``."""
    import fnmatch

    return pattern in (path.name, path.family) or fnmatch.fnmatchcase(path.name, pattern)


_PATHS: dict[str, AutogradPath] = {}


def register_path(path: AutogradPath, *, replace: bool = False) -> AutogradPath:
    """Add a path to the catalogue.

    Raises:
        UsageError: a different path already has that name (pass ``replace=True``).
    """
    if not isinstance(path, AutogradPath):
        raise UsageError(f"register_path expects a verijac.AutogradPath, got {path!r}")
    if path.name in _PATHS and not replace and _PATHS[path.name] is not path:
        raise UsageError(f"a path named {path.name!r} is already registered; pass replace=True")
    _PATHS[path.name] = path
    return path


_Run = TypeVar("_Run", bound=Callable[[Problem], "torch.Tensor | PathResult | None"])


def path(
    name: str,
    *,
    family: str,
    computes: str,
    call: str,
    description: str,
    replace: bool = False,
    **fields: Any,
) -> Callable[[_Run], _Run]:
    """Register the decorated function as the ``run`` of a new `AutogradPath`.

    ``@path(name=..., family=..., computes=..., call=..., description=..., **fields)`` above
    ``def run(problem)`` is ``register_path(AutogradPath(name=..., run=run, ...), replace=...)``
    with the declaration beside its code. The function is returned unchanged, so a factory's
    result can be registered as ``path(...)(factory(...))``.

    Args:
        fields: the other `AutogradPath` fields (``requires``, ``uses``, ``cost``,
            ``batched``, ``opt_in``, ``default_for``).
        replace: passed to `register_path`.

    Raises:
        UsageError: an invalid field, or a different path already has that name.
    """
    import dataclasses

    given = {"name", "family", "computes", "call", "description", "run"}
    known = sorted(f.name for f in dataclasses.fields(AutogradPath) if f.name not in given)
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise UsageError(
            f"path {name!r}: unknown fields {unknown}; the decorated function is the run, "
            f"and the other fields are {known}"
        )

    def register(run: _Run) -> _Run:
        register_path(
            AutogradPath(
                name=name,
                family=family,
                computes=computes,
                call=call,
                description=description,
                run=run,
                **fields,
            ),
            replace=replace,
        )
        return run

    return register


def _ensure_builtin() -> None:
    from . import _catalogue  # noqa: F401  (registers the built-in paths)


def get_path(name: str) -> AutogradPath:
    """The registered path called ``name``.

    Raises:
        UnknownPathError: no such path; the message suggests close names.
    """
    _ensure_builtin()
    try:
        return _PATHS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(_PATHS), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownPathError(
            f"no path named {name!r}{hint} (`verijac list --paths` shows the catalogue)"
        ) from None


def list_paths(
    pattern: str | None = None,
    *,
    family: str | Iterable[str] | None = None,
    include_opt_in: bool = True,
    default_for: str | None = None,
) -> list[AutogradPath]:
    """Registered paths in catalogue order, filtered by a name glob and family; with
    ``default_for``, only the paths that command runs when no path is named."""
    import fnmatch

    _ensure_builtin()
    fams = {family} if isinstance(family, str) else set(family or ())
    out = []
    for p in _PATHS.values():
        if pattern is not None and not fnmatch.fnmatchcase(p.name, pattern):
            continue
        if fams and p.family not in fams:
            continue
        if p.opt_in and not include_opt_in:
            continue
        if default_for is not None and (p.opt_in or default_for not in p.default_for):
            continue
        out.append(p)
    return out
