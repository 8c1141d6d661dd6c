"""Result records: a path's state turned into a `Record`, with the entry named in the case's
terms, the command that reproduces it, what explains a known failure (the case's
``known_failures``, a registered torch defect) and what a baseline already had."""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._compare import Comparison
from ._errors import UsageError
from ._kinds import BY_NAME, get_kind
from ._report import Record, Report
from ._runfile import load_run
from ._state import _Group, _Options, _PathState
from .paths._base import selects

if TYPE_CHECKING:
    from ._case import Case
    from ._defects import TorchDefect
    from .paths._base import AutogradPath


def _locate(flat: int, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> str:
    """Flat position → ``name[i,j]`` in the concatenation of the named blocks."""
    for name, shape in zip(names, shapes, strict=True):
        size = math.prod(shape)
        if flat < size:
            if not shape:
                return name
            idx = []
            for dim in reversed(shape):
                idx.append(flat % dim)
                flat //= dim
            return f"{name}[{','.join(map(str, reversed(idx)))}]"
        flat -= size
    return "?"


def entry_label(case: Case, computes: str, index: Sequence[int]) -> str:
    """The entry at ``index`` of a result of kind ``computes`` in the case's own terms:
    ``∂out[1][0,1]/∂A[0,1]`` for a Jacobian, ``∂²out/∂x∂y`` for a Hessian, ``(J·t)[…]`` …"""
    if not index:
        return ""
    outs = [f"out[{k}]" if case.tuple_outputs else "out" for k in range(len(case.outputs))]
    out_shapes = [tuple(o.shape) for o in case.outputs]
    ins = list(case.input_names)
    in_shapes = [tuple(v.shape) for v in case.variables]

    def out(i: int) -> str:
        return _locate(i, outs, out_shapes)

    def inp(j: int) -> str:
        return _locate(j, ins, in_shapes)

    rest = list(index[1:])
    label = get_kind(computes).label if computes in BY_NAME else None
    if label is None:
        return ""
    try:
        return label(out, inp, rest)
    except IndexError:
        return ""


def _reproduce(opts: _Options, case: Case, path: AutogradPath, device: str, dtype: str) -> str:
    prefix = opts.reproduce_prefix or f"verijac {opts.command}"
    parts = [
        prefix,
        f"--case {shlex.quote(case.name)}",
        f"--path {shlex.quote(path.name)}",
        f"--device {shlex.quote(device)}",
        f"--dtype {dtype}",
        f"--seed {opts.seed}",
        f"--max-examples {opts.max_examples}",
        f"--batch-size {opts.batch_size}",
    ]
    if opts.tf32:
        parts.append("--tf32")
    if opts.reference_digits is not None:
        parts.append(f"--reference-digits {opts.reference_digits}")
    return " ".join(parts)


def known_failure(case: Case, path: AutogradPath, dtype: str) -> tuple[str, str]:
    """The first ``case.known_failures`` entry that covers ``path`` in ``dtype``.

    Returns:
        ``(key, reason)``, or ``("", "")`` when none does. A key is ``PATH_GLOB`` (every
        dtype) or ``PATH_GLOB@DTYPE``; the glob matches like ``check(paths=...)``: a name, a
        family or an `fnmatch` pattern.
    """
    for key, reason in getattr(case, "known_failures", {}).items():
        pattern, _, only = key.partition("@")
        if only and only != dtype:
            continue
        if selects(pattern, path):
            return key, reason
    return "", ""


def _torch_defect(group: _Group, path: AutogradPath) -> TorchDefect | None:
    """The registered torch defect that covers ``path`` in this group, or ``None``."""
    from ._defects import find_defect

    return find_defect(
        case=group.case.name,
        path=path,
        device=group.device,
        dtype=group.dtype,
        op_kinds=group.op_kinds,
    )


def _known(group: _Group, path: AutogradPath) -> str:
    """What explains a failure of ``path`` in this group: ``case known_failures[KEY]``,
    ``torch defect ID`` or ``""``."""
    key, _ = known_failure(group.case, path, group.dtype)
    if key:
        return f"case known_failures[{key!r}]"
    defect = _torch_defect(group, path)
    return f"torch defect {defect.id}" if defect is not None else ""


def _known_outcome(
    state: _PathState, group: _Group, status: str, reason: str, cmp: Comparison | None
) -> tuple[str, str, str]:
    """``(status, reason, known)`` after the case's ``known_failures`` and the torch-defects
    registry: a failure they explain is ``xfail``, a pass they expect to fail is ``xpass``.

    A failure of a path that uses a capability the caller requires stays a failure: the
    report still names the defect.
    """
    path = state.path
    key, text = known_failure(group.case, path, group.dtype)
    shows: tuple[str, ...] = ("mismatch",)
    if key:
        known_as = f"case known_failures[{key!r}]"
        where = f"case {group.case.name!r}, known_failures[{key!r}]"
    else:
        defect = _torch_defect(group, path)
        if defect is None:
            return status, reason, ""
        known_as, shows = f"torch defect {defect.id}", defect.shows
        text = f"{defect.summary} (measured on torch {', '.join(defect.measured)})."
        where = f"known torch defect {defect.id}, docs/torch-defects.md"
    if status == "pass":
        return (
            "xpass",
            f"known failure did not show on {state.points} points ({where}): {text} "
            "It may be fixed; if it passes on other seeds too, narrow the entry's versions.",
            known_as,
        )
    if status not in shows:
        return status, reason, ""
    required = sorted(set(path.uses) & group.opts.require)
    if required:
        return status, f"{reason} (also {known_as}; required capability {required[0]})", ""
    observed = reason
    if cmp is not None:
        observed += (
            f"; expected {cmp.expected:.6g}, actual {cmp.actual:.6g} at index "
            f"{state.fields.get('index')}, allowed {cmp.allowed:.6g}"
        )
    return "xfail", f"expected failure ({where}): {text} Observed: {observed}", known_as


def _record(state: _PathState, group: _Group, status: str | None = None) -> Record:
    path, f = state.path, state.fields
    status = status or state.status or "pass"
    cmp: Comparison | None = f.get("cmp")
    numbers: dict[str, Any] = {}
    if cmp is not None:
        numbers = {"max_abs": cmp.max_abs, "max_rel": cmp.max_rel, "max_ulp": cmp.max_ulp}
    elif state.points and status in ("pass", "mismatch", "error") and path.computes != "behaviour":
        numbers = {"max_abs": state.max_abs, "max_rel": state.max_rel, "max_ulp": state.max_ulp}
    reason = f.get("reason", "")
    known_as = ""
    if status in ("mismatch", "pass", "error"):
        status, reason, known_as = _known_outcome(state, group, status, reason, cmp)
    return Record(
        case=group.case.name,
        path=path.name,
        family=path.family,
        computes=path.computes,
        device=group.device,
        dtype=group.dtype,
        status=status,
        points=state.points,
        seed=group.opts.seed,
        rtol=state.tolerance.rtol,
        atol=state.tolerance.atol,
        reason=reason,
        point=f.get("point"),
        index=f.get("index"),
        entry=f.get("entry", ""),
        expected=f.get("expected"),
        actual=f.get("actual"),
        allowed=f.get("allowed"),
        tangent=f.get("tangent"),
        cotangent=f.get("cotangent"),
        duration=state.elapsed,
        warnings=sorted(state.warnings),
        known=known_as,
        evidence=f.get("evidence"),
        reproduce=_reproduce(group.opts, group.case, path, group.device, group.dtype)
        if status in ("mismatch", "error", "xfail")
        else "",
        **numbers,
    )


def _baseline_index(
    baseline: Report | str | os.PathLike[str] | None,
) -> dict[tuple[str, str, str, str], Record] | None:
    """The baseline's failing records by key (``None``: no baseline)."""
    if baseline is None:
        return None
    if not isinstance(baseline, Report):
        if not isinstance(baseline, (str, os.PathLike)):
            raise UsageError(
                f"baseline must be a Report or the path of a run file, got {baseline!r}"
            )
        baseline = load_run(baseline)
    return {r.key: r for r in baseline.records if r.failed or r.status == "known"}


def _baseline_name(baseline: Any) -> str:
    return "<Report>" if isinstance(baseline, Report) else os.fspath(baseline)


def against_baseline(record: Record, failing: dict[tuple[str, str, str, str], Record]) -> Record:
    """A failure the baseline already had becomes ``known`` (``known="baseline:STATUS"``
    keeps the status it had, for writing the next baseline); a new one stays a failure."""
    before = failing.get(record.key)
    if not record.failed or before is None:
        return record
    was = before.known.partition(":")[2] if before.status == "known" else before.status
    return dataclasses.replace(
        record,
        status="known",
        known=f"baseline:{record.status}",
        reason=f"known from the baseline ({was} there): {record.reason}",
    )


def as_baseline(report: Report) -> Report:
    """``report`` with ``known`` records back to the failures they are, to be written as the
    next baseline."""
    records = [
        dataclasses.replace(r, status=r.known.partition(":")[2], known="")
        if r.status == "known" and r.known.startswith("baseline:")
        else r
        for r in report.records
    ]
    return dataclasses.replace(report, records=records)


__all__ = ["against_baseline", "as_baseline", "entry_label", "known_failure"]
