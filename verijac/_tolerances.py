"""Tolerances: one (rtol, atol) table per dtype, derivative factors, and user overrides.

The base table is torch.testing's (``torch/testing/_comparison.py``, ``_DTYPE_PRECISIONS`` and
the float32/float64 defaults of ``assert_close``). It is calibrated for *values*: one forward
evaluation of an operator. Derivatives are compared with the same table scaled by
`ORDER_FACTOR`, and the allowed error of every entry is ``atol + rtol·scale + cond`` where
``scale`` and ``cond`` come from the exact reference (see `verijac._compare` and
docs/tolerances.md for the reasoning).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import UsageError
from ._kinds import KINDS
from .paths._base import selects

#: ``dtype name → (rtol, atol)`` for values. Source: torch.testing.assert_close defaults
#: (float64 1e-7/1e-7, float32 1.3e-6/1e-5, float16 1e-3/1e-5, bfloat16 1.6e-2/1e-5).
VALUE_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-7),
    "float32": (1.3e-6, 1e-5),
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}

#: Multiplier of the value tolerance per derivative order. A reverse (or forward) pass over a
#: program of k rounded operations performs about 2k rounded operations, and differentiating
#: again doubles that once more; rounding errors grow at most linearly with the operation
#: count, so first derivatives get 2× and second derivatives 4× the value tolerance.
ORDER_FACTOR: dict[int, float] = {0: 1.0, 1: 2.0, 2: 4.0}

#: Which derivative order each path result kind has (`verijac._kinds.Kind.order`).
COMPUTES_ORDER: dict[str, int] = {k.name: k.order for k in KINDS}

#: How many units of roundoff of the path's dtype the inputs are perturbed by to estimate the
#: conditioning of the derivative (the ``cond`` term of the allowed error).
COND_ULPS = 4.0

DTYPE_NAMES = ("float64", "float32", "float16", "bfloat16")
_ALIASES = {"double": "float64", "float": "float32", "half": "float16", "bf16": "bfloat16"}

#: Per-path overrides: path name, glob or family → dtype name (or ``"*"``) → {rtol, atol};
#: or path → {rtol, atol} for every dtype.
PathTolerances = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Tolerance:
    """The tolerance one comparison uses, and where it came from.

    Attributes:
        rtol / atol: relative and absolute parts.
        source: ``"table"``, ``"case"`` or ``"path"``: which layer set them.
    """

    rtol: float
    atol: float
    source: str = "table"


def dtype_name(dtype: Any) -> str:
    """Canonical name (``"float32"``) of a torch dtype or a dtype name.

    Raises:
        UsageError: not a floating dtype verijac checks.
    """
    text = str(dtype).removeprefix("torch.")
    text = _ALIASES.get(text, text)
    if text not in DTYPE_NAMES:
        raise UsageError(f"dtype must be one of {DTYPE_NAMES}, got dtype={dtype!r}")
    return text


def base_tolerance(dtype: Any, *, order: int = 1) -> Tolerance:
    """The table tolerance for ``dtype`` and derivative ``order`` (0 = values)."""
    rtol, atol = VALUE_TOLERANCES[dtype_name(dtype)]
    factor = ORDER_FACTOR[order]
    return Tolerance(rtol * factor, atol * factor, "table")


def _check_pair(what: str, tol: Any) -> dict[str, float]:
    if not isinstance(tol, Mapping) or not tol or not set(tol) <= {"rtol", "atol"}:
        raise UsageError(
            f"{what} must be a mapping with keys 'rtol' and/or 'atol', got {tol!r}; "
            "e.g. {'rtol': 1e-5, 'atol': 1e-6}"
        )
    out = {}
    for key, val in tol.items():
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not val >= 0:
            raise UsageError(f"{what}[{key!r}] must be a number >= 0, got {val!r}")
        out[key] = float(val)
    return out


def check_path_pattern(pattern: Any, what: str) -> str:
    """Check that ``pattern`` (a path name, family name or glob) selects a registered path.

    A typo would otherwise select nothing, and the override or known failure it carries would
    be silently ignored. A dotted pattern in a namespace no registered path uses (not close to
    one either), such as ``"myorg.my_path"``, is accepted: it may name a path registered later.

    Raises:
        UsageError: ``pattern`` is not a string or selects no path; the message lists close
            matches.
    """
    import difflib

    from .paths import contract as _contract  # noqa: F401 (registers the contract family)
    from .paths._base import FAMILIES, list_paths

    if not isinstance(pattern, str) or not pattern.strip():
        raise UsageError(
            f"{what}: expected a path name, family or glob such as 'func.*', got {pattern!r}"
        )
    paths = list_paths()
    if pattern in FAMILIES or any(selects(pattern, p) for p in paths):
        return pattern
    # A pattern in a namespace of its own ("myorg.my_path") may name a path its user
    # registers later; one in a registered namespace (or close to one: "fucn.grad") or
    # without a namespace must select something now.
    spaces = {*FAMILIES, *(p.name.partition(".")[0] for p in paths)}
    space, dot, _ = pattern.partition(".")
    if dot and space not in spaces and not difflib.get_close_matches(space, spaces, cutoff=0.75):
        return pattern
    names = [*FAMILIES, *(p.name for p in paths)]
    close = difflib.get_close_matches(pattern, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UsageError(
        f"{what}: the pattern {pattern!r} selects no autograd path{hint} Give a path name, a "
        f"family ({', '.join(FAMILIES)}) or a glob that matches one (`verijac list --paths` "
        "shows the catalogue)"
    )


def normalise_path_tolerances(
    tolerances: PathTolerances | None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Validate ``check(tolerances=...)`` into ``pattern → dtype name or "*" → {rtol, atol}``.

    Raises:
        UsageError: the mapping has another shape or holds a negative tolerance.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    if tolerances is None:
        return out
    if not isinstance(tolerances, Mapping):
        raise UsageError(
            "tolerances must map a path name (or glob, or family) to {dtype: {'rtol', 'atol'}}, "
            f"got {tolerances!r}"
        )
    for pattern, spec in tolerances.items():
        check_path_pattern(pattern, f"tolerances[{pattern!r}]")
        if isinstance(spec, Mapping) and spec and set(spec) <= {"rtol", "atol"}:
            out[str(pattern)] = {"*": _check_pair(f"tolerances[{pattern!r}]", spec)}
            continue
        if not isinstance(spec, Mapping):
            raise UsageError(
                f"tolerances[{pattern!r}] must be {{'rtol', 'atol'}} or {{dtype: {{'rtol', 'atol'}}}}, "
                f"got {spec!r}"
            )
        per: dict[str, dict[str, float]] = {}
        for dt, tol in spec.items():
            key = "*" if dt == "*" else dtype_name(dt)
            per[key] = _check_pair(f"tolerances[{pattern!r}][{dt!r}]", tol)
        out[str(pattern)] = per
    return out


def resolve_tolerance(
    dtype: Any,
    *,
    order: int,
    case_tolerances: Mapping[str, Mapping[str, float]] | None = None,
    path: Any = None,
    path_tolerances: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> Tolerance:
    """The tolerance for one comparison: path override > case override > table.

    An override replaces ``rtol`` and/or ``atol`` as given (not scaled by the order factor);
    what it leaves out keeps the layer below.

    Args:
        dtype: the path's dtype.
        order: derivative order of the result (see `COMPUTES_ORDER`).
        case_tolerances: ``case.tolerances`` (dtype name → {rtol, atol}).
        path: the `verijac.paths.Path` (its name and family are matched).
        path_tolerances: the output of `normalise_path_tolerances`.
    """
    name = dtype_name(dtype)
    tol = base_tolerance(name, order=order)
    rtol, atol, source = tol.rtol, tol.atol, tol.source
    case_tol = (case_tolerances or {}).get(name)
    if case_tol:
        rtol, atol = case_tol.get("rtol", rtol), case_tol.get("atol", atol)
        source = "case"
    if path is not None:
        for pattern, per in (path_tolerances or {}).items():
            if selects(pattern, path):
                chosen = per.get(name, per.get("*"))
                if chosen:
                    rtol, atol = chosen.get("rtol", rtol), chosen.get("atol", atol)
                    source = "path"
    return Tolerance(rtol, atol, source)


__all__ = [
    "COMPUTES_ORDER",
    "ORDER_FACTOR",
    "VALUE_TOLERANCES",
    "Tolerance",
    "base_tolerance",
    "check_path_pattern",
    "dtype_name",
    "normalise_path_tolerances",
    "resolve_tolerance",
]
