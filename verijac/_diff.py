"""Compare two run files: what changed per case × path × device × dtype, and whose it is.

Each record of run A is paired with the record of run B for the same case, path, device and
dtype (when the two runs checked disjoint devices, e.g. CPU against CUDA, the device is left
out of the pairing and the row shows ``cpu→cuda:0``). A pair is one of `KINDS`, most severe
first; pairs that did not change are only counted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import UsageError

if TYPE_CHECKING:
    from ._report import Record, Report

#: What a pair of records can show, most severe first.
KINDS = (
    "regressed",
    "case changed",
    "error grew",
    "new",
    "removed",
    "fixed",
    "error shrank",
)
_BAD = frozenset({"mismatch", "error"})
_EXPLAINED = frozenset({"xfail", "known"})
_GOOD = frozenset({"pass", "xpass"})
DEFAULT_FACTOR = 10.0


@dataclass
class Change:
    """One row of a diff: a case × path × device × dtype whose outcome changed."""

    kind: str
    case: str
    path: str
    device: str
    dtype: str
    before: str
    after: str
    ulp_before: float | None = None
    ulp_after: float | None = None
    #: Whose it is, from the evidence: ``torch defect ID``, ``case changed``, ``torch A→B`` …
    cause: str = ""
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.case} / {self.path} [{self.device}, {self.dtype}]"


@dataclass
class Diff:
    """The changes between run A and run B, with what differs between the runs themselves."""

    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    #: Lines saying how the runs differ (torch version, devices, seed, profile, …).
    context: list[str] = field(default_factory=list)
    factor: float = DEFAULT_FACTOR

    @property
    def regressed(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "regressed"]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for c in self.changes:
            out[c.kind] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "factor": self.factor,
            "counts": self.counts(),
            "unchanged": self.unchanged,
            "changes": [{k: _json_float(v) for k, v in asdict(c).items()} for c in self.changes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def table(self, *, markdown: bool = False) -> str:
        """The changes as a table (plain text, or Markdown with ``markdown=True``)."""
        header = ("CHANGE", "CASE", "PATH", "DEVICE", "DTYPE", "BEFORE", "AFTER", "ULP", "CAUSE")
        rows = [
            (
                c.kind,
                c.case,
                c.path,
                c.device,
                c.dtype,
                c.before,
                c.after,
                f"{_num(c.ulp_before)} → {_num(c.ulp_after)}",
                c.cause,
            )
            for c in self.changes
        ]
        counts = ", ".join(f"{n} {k}" for k, n in self.counts().items() if n)
        summary = f"{len(self.changes)} changed ({counts or 'none'}), {self.unchanged} unchanged"
        if markdown:
            lines = [*(f"- {c}" for c in self.context), ""] if self.context else []
            lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            lines += ["| " + " | ".join(_md(x) for x in row) + " |" for row in rows]
            return "\n".join([*lines, "", summary, ""])
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
        lines = list(self.context)
        if rows:
            lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
            lines += ["  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows]
        lines.append(summary)
        return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _json_float(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def diff_runs(a: Report, b: Report, *, factor: float = DEFAULT_FACTOR) -> Diff:
    """What changed from run ``a`` to run ``b``.

    Args:
        a, b: two reports (e.g. from `verijac.load_run`); they may differ in torch version,
            device, seed or profile (the diff says so: different seeds mean different points).
        factor: a worst ULP error that grew or shrank by at least this factor is reported.

    Raises:
        UsageError: ``factor`` is not a number > 1.
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1:
        raise UsageError(f"factor must be a number > 1, got {factor!r}")
    devices_a = {r.device for r in a.records}
    devices_b = {r.device for r in b.records}
    by_device = not devices_a or not devices_b or bool(devices_a & devices_b)
    out = Diff(context=_context(a, b, by_device), factor=float(factor))
    index_a = _index(a.records, by_device)
    index_b = _index(b.records, by_device)
    torch_a, torch_b = a.environment.get("torch"), b.environment.get("torch")
    for key in sorted(set(index_a) | set(index_b)):
        ra, rb = index_a.get(key), index_b.get(key)
        change = _pair(ra, rb, a, b, float(factor), str(torch_a), str(torch_b))
        if change is None:
            out.unchanged += 1
        else:
            out.changes.append(change)
    order = {k: i for i, k in enumerate(KINDS)}
    out.changes.sort(key=lambda c: (order[c.kind], c.case, c.path, c.device, c.dtype))
    return out


def _index(records: Sequence[Record], by_device: bool) -> dict[tuple[str, ...], Record]:
    return {(r.case, r.path, r.device if by_device else "", r.dtype): r for r in records}


def _context(a: Report, b: Report, by_device: bool) -> list[str]:
    def env(r: Report) -> str:
        e, s = r.environment, r.settings
        devices = ", ".join(sorted({x.device for x in r.records})) or "-"
        return (
            f"torch {e.get('torch', '?')} on {devices}, seed {r.seed}, profile "
            f"{s.get('profile', '?')}, {len(r.records)} records"
        )

    lines = [f"A: {env(a)}", f"B: {env(b)}"]
    if a.seed != b.seed or a.settings.get("profile") != b.settings.get("profile"):
        lines.append("note: the runs used different seeds or profiles, so the points differ")
    if not by_device:
        lines.append(
            "note: the runs checked different devices; records are paired by case, path and dtype"
        )
    return lines


def _ulp(r: Record | None) -> float | None:
    if r is None or r.max_ulp is None:
        return None
    return float(r.max_ulp)


def _pair(
    ra: Record | None,
    rb: Record | None,
    a: Report,
    b: Report,
    factor: float,
    torch_a: str,
    torch_b: str,
) -> Change | None:
    ref = rb or ra
    assert ref is not None
    device = (
        ref.device
        if ra is None or rb is None or ra.device == rb.device
        else f"{ra.device}→{rb.device}"
    )

    def change(kind: str, cause: str, detail: str = "") -> Change:
        return Change(
            kind,
            ref.case,
            ref.path,
            device,
            ref.dtype,
            before=ra.status if ra else "-",
            after=rb.status if rb else "-",
            ulp_before=_ulp(ra),
            ulp_after=_ulp(rb),
            cause=cause,
            detail=detail,
        )

    if ra is None:
        return change("new", "only in B")
    if rb is None:
        return change("removed", "only in A")
    ha, hb = a.cases.get(ref.case), b.cases.get(ref.case)
    changed_case = ha is not None and hb is not None and ha != hb
    if changed_case and (ra.status != rb.status or ra.max_ulp != rb.max_ulp):
        return change("case changed", "the case's expressions or domain changed")
    cause = _cause(ra, rb, torch_a, torch_b)
    if rb.status in _BAD | _EXPLAINED and ra.status not in _BAD | _EXPLAINED:
        return change("regressed", cause, rb.reason.splitlines()[0] if rb.reason else "")
    if rb.status == "unsupported" and ra.status in _GOOD:
        return change("regressed", cause, f"now unsupported: {rb.reason}")
    if rb.status in _GOOD and ra.status in _BAD | _EXPLAINED:
        return change("fixed", cause)
    ua, ub = _ulp(ra), _ulp(rb)
    if ua is not None and ub is not None and math.isfinite(ua) and math.isfinite(ub):
        # One ULP is the floor: 0 → 0.5 ULP is no growth worth a row.
        growth = (ub + 1.0) / (ua + 1.0)
        if growth >= factor:
            return change("error grew", cause, f"{growth:.3g}×")
        if growth <= 1 / factor:
            return change("error shrank", cause, f"{1 / growth:.3g}×")
    return None


def _cause(ra: Record, rb: Record, torch_a: str, torch_b: str) -> str:
    """Whose change it is, as far as the runs show."""
    for r in (rb, ra):
        if r.known.startswith("torch defect "):
            return f"known {r.known}"
    parts = []
    if torch_a != torch_b:
        parts.append(f"torch {torch_a}→{torch_b}")
    if ra.device != rb.device:
        parts.append(f"device {ra.device}→{rb.device}")
    return ", ".join(parts) or "same torch and device: the function under test or the points"


__all__ = ["DEFAULT_FACTOR", "KINDS", "Change", "Diff", "diff_runs"]
