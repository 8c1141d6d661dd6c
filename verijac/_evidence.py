"""The shape of one failing result: what its failing entries have in common.

When a path's result exceeds its bound, the runner measures the whole failing batch (every
entry, not only the worst one) against the exact reference and keeps what the numbers show:

* a constant factor: ``actual / expected`` is one number ``c`` that explains every failing
  entry to within the tolerance (``c = -1``: a sign flip);
* zero where a nonzero value is expected at every failing entry (a detached graph, a missing
  rule);
* NaN/inf at every failing entry;
* swapped partials: the result for input ``j`` equals, at every point, the exact result for
  another input ``k``;
* where the failing points lie: per input coordinate, the range of the failing and of the
  passing points, in value and in magnitude (`verijac._diagnosis` looks for a threshold that
  separates them).

The evidence is a plain JSON-ready dict (`Record.evidence`); `verijac._diagnosis` reads it.
A pattern is named only when it holds at every failing entry: mixed evidence names none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._kinds import KINDS

if TYPE_CHECKING:
    import torch

    from ._case import Case
    from ._reference import _Reference
    from ._tolerances import Tolerance

#: Shapes `measure` can name, in the order it tries them.
SHAPES = ("nonfinite", "zero", "sign", "factor", "swap")
#: Inputs with more scalar elements than this get no swap search and no region ranges (the
#: swap search is quadratic in it, and chance separations multiply with the coordinates).
MAX_COORDINATES = 16
#: How close to -1 a constant factor must be to be called a sign flip.
SIGN_SLACK = 1e-3
#: Result kinds whose axes (counted from the end) run over the inputs' elements
#: (`verijac._kinds.Kind.input_axes`).
INPUT_AXES: dict[str, tuple[int, ...]] = {k.name: k.input_axes for k in KINDS if k.input_axes}


def coordinate_labels(case: Case) -> list[str]:
    """One label per scalar input element, in the flat order of the inputs: ``x``,
    ``A[0,1]`` …"""
    import itertools

    out: list[str] = []
    for v in case.variables:
        shape = tuple(v.shape)
        if not shape:
            out.append(v.name)
            continue
        for idx in itertools.product(*(range(s) for s in shape)):
            out.append(f"{v.name}[{','.join(map(str, idx))}]")
    return out


def from_reference(
    ref: _Reference,
    computes: str,
    tolerance: Tolerance,
    result: torch.Tensor,
    moved: tuple[torch.Tensor, ...] | None,
) -> dict[str, Any]:
    """`measure` for a path's failing ``result`` against the runner's exact reference ``ref``
    (at the points the path moved to, if it moved them), with the bound that failed it.

    Never raises: evidence that cannot be measured is ``{"unavailable": reason}``.
    """
    try:
        at = ref if moved is None else ref.at(moved)
        check = at.bound(computes, tolerance)
        allowed = check.allowed + at.cond(computes).to(check.allowed.device)
        problem = at.problem
        few = ref.case.n_in <= MAX_COORDINATES
        return measure(
            result,
            check.expected,
            allowed,
            computes=computes,
            points=problem.flat_inputs(problem.inputs) if few else None,
            labels=coordinate_labels(ref.case) if few else (),
            in_range=check.in_range,
        )
    except Exception as exc:  # evidence is an extra: it must never turn a mismatch into an error
        return {"unavailable": f"{type(exc).__name__}: {exc}"}


def measure(
    actual: torch.Tensor,
    expected: torch.Tensor,
    allowed: torch.Tensor | float,
    *,
    computes: str,
    points: torch.Tensor | None = None,
    labels: Sequence[str] = (),
    in_range: torch.Tensor | None = None,
) -> dict[str, Any]:
    """What the failing entries of one result have in common.

    Args:
        actual: the path's result, the shape of ``expected`` (leading axis: the points).
        expected: the exact result (float64).
        allowed: the allowed error per entry (broadcasts to ``expected``).
        computes: the result kind (`verijac.paths.COMPUTES`): which axes run over inputs.
        points: ``(N, n)`` the points, inputs flattened; ``None``: no region ranges.
        labels: ``n`` labels of the input coordinates (`coordinate_labels`).
        in_range: entries compared (``None``: all); the others are ignored.

    Returns:
        A JSON-ready dict: ``rows``, ``failing_rows``, ``entries``, ``failing``, ``nonfinite``
        (counts), ``shape`` (one of `SHAPES` or ``""``), ``factor`` and ``spread`` (a constant
        factor or sign flip), ``ratio`` (``[min, max]`` of actual/expected over the failing
        entries), ``fits_all`` (the shape fits every entry, passing ones too), ``swap`` (pairs
        ``[label, label of the exact entry it equals]``), ``coordinates`` (per label: ``fail``,
        ``pass``, ``fail_abs``, ``pass_abs`` ranges).
    """
    import torch

    e = expected.detach().to(device="cpu", dtype=torch.float64)
    a = actual.detach().to(device="cpu", dtype=torch.float64).reshape(e.shape)
    allow = torch.as_tensor(allowed).to(device="cpu", dtype=torch.float64).expand(e.shape)
    valid = (
        torch.ones_like(e, dtype=torch.bool)
        if in_range is None
        else torch.as_tensor(in_range).to("cpu").expand(e.shape)
    )
    finite = torch.isfinite(a)
    nonfinite = valid & ~finite
    bad = valid & (((a - e).abs() > allow) | ~finite)
    n = int(e.shape[0]) if e.dim() else 1
    bad_rows = bad.reshape(n, -1).any(dim=1)
    out: dict[str, Any] = {
        "rows": n,
        "failing_rows": int(bad_rows.sum()),
        "entries": int(valid.sum()),
        "failing": int(bad.sum()),
        "nonfinite": int(nonfinite.sum()),
        "shape": "",
        "fits_all": False,
    }
    if not out["failing"]:
        return out
    bad_a, bad_e = a[bad], e[bad]
    # A ratio means something where the exact value itself exceeds its allowed error.
    usable = torch.isfinite(bad_a) & (bad_e.abs() > allow[bad])
    if bool(usable.any()):
        r = bad_a[usable] / bad_e[usable]
        out["ratio"] = [float(r.min()), float(r.max())]
    out.update(_shape(a, e, allow, valid, bad, computes, labels))
    if points is not None and 0 < len(labels) <= MAX_COORDINATES:
        out["coordinates"] = _coordinates(points, bad_rows, labels)
    return out


#: Counts every measured evidence has (`measure`).
COUNTS = ("rows", "failing_rows", "entries", "failing", "nonfinite")


def evidence_problem(evidence: dict[str, Any]) -> str:
    """What is wrong with a record's evidence read from a file (``""``: nothing): the counts
    must be integers, the shape one of `SHAPES` (or empty) with its numbers."""
    if "unavailable" in evidence or set(evidence) <= {"fails_alone"}:
        return ""  # not measured: nothing to check
    for key in COUNTS:
        v = evidence.get(key)
        if not isinstance(v, int) or isinstance(v, bool):
            return f"evidence {key} must be an integer, got {v!r}"
    shape = evidence.get("shape", "")
    if shape not in ("", *SHAPES):
        return f"evidence shape must be one of {list(SHAPES)} or empty, got {shape!r}"
    if shape in ("factor", "sign") and not isinstance(evidence.get("factor"), (int, float)):
        return f"evidence factor must be a number, got {evidence.get('factor')!r}"
    if shape == "swap" and not isinstance(evidence.get("swap"), list):
        return f"evidence swap must be a list of pairs, got {evidence.get('swap')!r}"
    coords = evidence.get("coordinates", {})
    if not isinstance(coords, dict) or not all(
        isinstance(v, dict) and all(k in v for k in ("fail", "pass", "fail_abs", "pass_abs"))
        for v in coords.values()
    ):
        return "evidence coordinates must map each coordinate to its fail/pass ranges"
    alone = evidence.get("fails_alone")
    if alone is not None and not isinstance(alone, bool):
        return f"evidence fails_alone must be true, false or null, got {alone!r}"
    return ""


def _fits(a: torch.Tensor, model: torch.Tensor, allow: torch.Tensor, mask: torch.Tensor) -> bool:
    """Whether ``model`` is within ``allow`` of ``a`` at every entry of ``mask``."""
    return bool((((a - model).abs() <= allow) | ~mask).all())


def _shape(
    a: torch.Tensor,
    e: torch.Tensor,
    allow: torch.Tensor,
    valid: torch.Tensor,
    bad: torch.Tensor,
    computes: str,
    labels: Sequence[str],
) -> dict[str, Any]:
    """The first of `SHAPES` that holds at every failing entry, with its numbers."""
    import torch

    if not bool(torch.isfinite(a[bad]).any()):
        return {"shape": "nonfinite"}
    if not bool(torch.isfinite(a[bad]).all()):
        return {}  # NaN at some failing entries, numbers at others: no one pattern
    if bool((a[bad] == 0).all()):
        return {"shape": "zero", "fits_all": _fits(a, torch.zeros_like(a), allow, valid)}
    bad_e = e[bad]
    if bool((bad_e != 0).all()):
        ratio = a[bad] / bad_e
        c = float(ratio.median())
        if c != 0 and _fits(a, c * e, allow, bad):
            shape = "sign" if abs(c + 1) <= SIGN_SLACK else "factor"
            return {
                "shape": shape,
                "factor": c,
                "spread": float((ratio - c).abs().max()),
                "fits_all": _fits(a, c * e, allow, valid),
            }
    swap = _swap(a, e, allow, valid, bad, computes, labels)
    if swap:
        return {"shape": "swap", "swap": swap, "fits_all": True}
    return {}


def _swap(
    a: torch.Tensor,
    e: torch.Tensor,
    allow: torch.Tensor,
    valid: torch.Tensor,
    bad: torch.Tensor,
    computes: str,
    labels: Sequence[str],
) -> list[list[str]]:
    """Pairs ``[label j, label k]``: along an input axis, every slice ``j`` with a failing
    entry equals the exact slice ``k != j`` at every point; ``[]`` when no axis shows that."""
    for axis in INPUT_AXES.get(computes, ()):
        size = int(e.shape[axis]) if e.dim() >= -axis else 0
        if not 2 <= size <= MAX_COORDINATES or len(labels) != size:
            continue
        am, em, lm, vm = (t.movedim(axis, -1) for t in (a, e, allow, valid))
        failing = bad.movedim(axis, -1).reshape(-1, size).any(dim=0)
        pairs: list[list[str]] = []
        for j in [int(i) for i in failing.nonzero().flatten()]:
            match = next(
                (
                    k
                    for k in range(size)
                    if k != j and _fits(am[..., j], em[..., k], lm[..., j], vm[..., j])
                ),
                None,
            )
            if match is None:
                break
            pairs.append([labels[j], labels[match]])
        else:
            if pairs:
                return pairs
    return []


def _coordinates(
    points: torch.Tensor, bad_rows: torch.Tensor, labels: Sequence[str]
) -> dict[str, Any]:
    """Per input coordinate, the ranges of the failing and passing points, in value and in
    magnitude (``None`` where there are no such points)."""
    import torch

    x = points.detach().to(device="cpu", dtype=torch.float64).reshape(bad_rows.shape[0], -1)

    def span(v: torch.Tensor) -> list[float] | None:
        v = v[torch.isfinite(v)]
        return [float(v.min()), float(v.max())] if v.numel() else None

    out: dict[str, Any] = {}
    for j, label in enumerate(labels[: x.shape[1]]):
        col = x[:, j]
        out[label] = {
            "fail": span(col[bad_rows]),
            "pass": span(col[~bad_rows]),
            "fail_abs": span(col[bad_rows].abs()),
            "pass_abs": span(col[~bad_rows].abs()),
        }
    return out


def merge_coordinates(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ranges of several `measure` results pooled (coordinates present in all of them)."""
    if not items:
        return {}
    common = set(items[0])
    for item in items[1:]:
        common &= set(item)
    out: dict[str, Any] = {}
    for label in [k for k in items[0] if k in common]:
        merged: dict[str, list[float] | None] = {}
        for key in ("fail", "pass", "fail_abs", "pass_abs"):
            spans = [item[label][key] for item in items if item[label].get(key) is not None]
            merged[key] = [min(s[0] for s in spans), max(s[1] for s in spans)] if spans else None
        out[label] = merged
    return out


# -- pooled over several results ------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """Where a cause's failing points lie: a threshold on one input coordinate separates them
    from the passing points.

    Attributes:
        coordinate: the input element (``x``, ``A[0,1]``).
        magnitude: the threshold is on ``|coordinate|``.
        side: ``"above"`` (failing points are the larger ones) or ``"below"``.
        failing / passing: the ranges of the failing and of the passing points (in magnitude
            when ``magnitude``).
    """

    coordinate: str
    magnitude: bool
    side: str
    failing: tuple[float, float]
    passing: tuple[float, float]

    def text(self) -> str:
        name = f"|{self.coordinate}|" if self.magnitude else self.coordinate
        if self.side == "above":
            fail, passing = _distinct(self.failing[0], self.passing[1])
            return (
                f"the failures lie where {name} ≥ {fail}; every passing point has "
                f"{name} ≤ {passing}"
            )
        fail, passing = _distinct(self.failing[1], self.passing[0])
        return f"the failures lie where {name} ≤ {fail}; every passing point has {name} ≥ {passing}"


@dataclass(frozen=True)
class _Shape:
    """One error shape that a set of results share: the shape, its numbers, its phrase."""

    shape: str
    factor: float | None
    swap: tuple[tuple[str, str], ...]
    phrase: str  # "a constant factor 1.001 (actual/expected at all 12 failing entries"


def _common(evidence: Sequence[dict[str, Any]], of: str) -> _Shape | None:
    """The shape every one of ``evidence`` shows, with agreeing numbers; ``None`` if none."""
    shapes = {e.get("shape", "") for e in evidence}
    shape = shapes.pop() if len(shapes) == 1 else ""
    if not shape:
        return None
    entries = sum(int(e["failing"]) for e in evidence)
    where = f"at all {entries} failing entries of {of}"
    if shape in ("factor", "sign"):
        factors = [float(e["factor"]) for e in evidence]
        c = factors[0]
        if not all(abs(f - c) <= 0.01 * abs(c - 1) for f in factors):
            return None
        if shape == "sign":
            return _Shape(shape, c, (), f"a sign flip (actual = -expected {where})")
        spread = max(float(e.get("spread", 0.0)) for e in evidence)
        return _Shape(
            shape,
            c,
            (),
            f"a constant factor {fmt(c)}{_batch_note(c, evidence)} "
            f"(actual/expected {where}, spread {spread:.1g})",
        )
    if shape == "zero":
        return _Shape(
            shape,
            None,
            (),
            f"zero where a nonzero value is expected, {where} (as from a detached graph or a "
            "missing rule)",
        )
    if shape == "nonfinite":
        return _Shape(shape, None, (), f"NaN/inf only, {where}")
    pairs: list[tuple[str, str]] = []
    for e in evidence:
        for a, b in e.get("swap", ()):
            if (a, b) not in pairs:
                pairs.append((a, b))
    said = "; ".join(f"the result for {a} is the exact one for {b}" for a, b in pairs)
    return _Shape(shape, None, tuple(pairs), f"swapped partials: {said} ({of})")


def pooled_shape(
    results: Sequence[tuple[str, dict[str, Any]]], n_claimed: int
) -> tuple[str, float | None, tuple[tuple[str, str], ...], str]:
    """``(shape, factor, swap, "Error shape: …" line)`` over several results.

    Args:
        results: ``(path name, evidence)`` of each result with numbers.
        n_claimed: the number of results the cause explains, numbers or not.

    A shape is claimed when every result shows it, with agreeing numbers. When most do, the
    line says so with the counts and names the others, but claims no shape.
    """
    if not results:
        return "", None, (), ""
    evidence = [e for _, e in results]
    k = len(evidence)
    of = f"{k} result{'s' if k > 1 else ''}"
    if k < n_claimed:
        of += " with numbers"
    found = _common(evidence, of)
    if found is not None:
        return found.shape, found.factor, found.swap, f"Error shape: {found.phrase}."
    counts: dict[str, int] = {}
    for e in evidence:
        if e.get("shape"):
            counts[e["shape"]] = counts.get(e["shape"], 0) + 1
    for shape, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if 2 * n <= k:
            break
        most = _common([e for e in evidence if e.get("shape") == shape], f"{n} of the {of}")
        if most is not None:
            others = list(dict.fromkeys(name for name, e in results if e.get("shape") != shape))
            return (
                "",
                None,
                (),
                f"Error shape: {most.phrase}; no single pattern fits the other {k - n} "
                f"({', '.join(others)}).",
            )
    ratios = [e["ratio"] for e in evidence if e.get("ratio")]
    span = ""
    if ratios:
        low, high = min(r[0] for r in ratios), max(r[1] for r in ratios)
        span = f"; actual/expected ranges from {fmt(low)} to {fmt(high)}"
    factors = [float(e["factor"]) for e in evidence if e.get("shape") == "factor"]
    if len(factors) == k:
        span = (
            "; each is off by a constant factor, but not the same one: "
            f"{fmt(min(factors))} to {fmt(max(factors))}"
        )
    return "", None, (), f"Error shape: no single pattern fits every failing entry ({of}{span})."


def _batch_note(c: float, evidence: Sequence[dict[str, Any]]) -> str:
    """`` = 1/32, one over the batch size`` when the factor is exactly that in every result."""
    rows = {int(e["rows"]) for e in evidence}
    if len(rows) != 1:
        return ""
    n = rows.pop()
    if n > 1 and abs(c * n - 1) <= 1e-6:
        return f" = 1/{n}, one over the {n} points of the batch"
    if n > 1 and abs(c / n - 1) <= 1e-6:
        return f" = {n}, the number of points in the batch"
    return ""


def pooled_points(
    evidence: Sequence[dict[str, Any]], shape: str
) -> tuple[Region | None, bool, str]:
    """``(region, whole_domain, "Points: …" line)`` over several results' evidence, whose
    pooled shape is ``shape``."""

    if not evidence:
        return None, False, ""
    k = len(evidence)
    batches = f"{k} failing batch{'es' if k > 1 else ''}"
    failing = sum(int(e["failing_rows"]) for e in evidence)
    rows = sum(int(e["rows"]) for e in evidence)
    if shape and all(e.get("fits_all") for e in evidence):
        return (
            None,
            True,
            f"Points: the whole sampled domain (the pattern fits every point of the {batches}, "
            "passing points included).",
        )
    if failing == rows:
        return None, True, f"Points: every point of the {batches} fails ({rows})."
    coords = [e["coordinates"] for e in evidence if e.get("coordinates")]
    if len(coords) < k:
        return None, False, f"Points: {failing} of {rows} points of the {batches} fail."
    merged = merge_coordinates(coords)
    region = _separate(merged)
    if region is not None and _sliver(region):
        return (
            None,
            False,
            f"Points: nearly the whole sampled domain: {region.text()} (over the {batches}).",
        )
    if region is not None:
        return region, False, f"Points: {region.text()} (over the {batches})."
    box = ", ".join(
        f"{label} ∈ [{fmt(v['fail'][0])}, {fmt(v['fail'][1])}]"
        for label, v in merged.items()
        if v.get("fail")
    )
    return (
        None,
        False,
        f"Points: {failing} of {rows} points of the {batches} fail, spread over {box}; no "
        "threshold on one input separates them from the passing ones.",
    )


#: A separation whose passing side spans less than this fraction of the points' range says
#: the rule is right only in a sliver (near a zero of the error), not wrong in a region.
SLIVER = 0.05


def _sliver(region: Region) -> bool:
    lo = min(region.failing[0], region.passing[0])
    hi = max(region.failing[1], region.passing[1])
    return hi > lo and (region.passing[1] - region.passing[0]) < SLIVER * (hi - lo)


def _separate(merged: dict[str, Any]) -> Region | None:
    """The threshold on one coordinate that separates every failing point from every passing
    one: on a value if one does (the narrower claim), else on a magnitude; the widest gap,
    relative to the points' range, among those."""
    best: tuple[bool, float, Region] | None = None
    for label, v in merged.items():
        for fk, pk, magnitude in (("fail", "pass", False), ("fail_abs", "pass_abs", True)):
            f, p = v.get(fk), v.get(pk)
            if not f or not p:
                continue
            if f[1] < p[0]:
                side, gap = "below", p[0] - f[1]
            elif f[0] > p[1]:
                side, gap = "above", f[0] - p[1]
            else:
                continue
            width = max(f[1], p[1]) - min(f[0], p[0]) or 1.0
            region = Region(label, magnitude, side, (f[0], f[1]), (p[0], p[1]))
            rank = (not magnitude, gap / width)
            if best is None or rank > best[:2]:
                best = (*rank, region)
    return None if best is None else best[2]


# -- numbers in text -------------------------------------------------------------------------


def fmt(x: float, digits: int = 4) -> str:
    """``x`` to ``digits`` significant digits."""
    return f"{x:.{digits}g}"


def _distinct(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with the fewest digits (4 or more) that print them apart."""
    for digits in range(4, 18):
        if fmt(a, digits) != fmt(b, digits):
            break
    return fmt(a, digits), fmt(b, digits)


__all__ = [
    "COUNTS",
    "INPUT_AXES",
    "MAX_COORDINATES",
    "SHAPES",
    "Region",
    "coordinate_labels",
    "evidence_problem",
    "fmt",
    "from_reference",
    "measure",
    "merge_coordinates",
    "pooled_points",
    "pooled_shape",
]
