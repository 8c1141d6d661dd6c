"""The conformance table: op × path family × dtype (× device), one column per torch version.

Built from run files (`verijac check --json RUN.json`): each cell aggregates the records of
one case, path family, device and dtype in one run into its worst status, the count per
status and the worst ULP error. A failure explained by a known torch defect (status
``xfail``, ``known = "torch defect ID"``) links to that entry of ``torch-defects.md``; a
failure nothing explains is shown in bold and listed first on the page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._report import Record, Report

#: Worst first: a cell shows the first of these among its records.
SEVERITY = ("error", "mismatch", "known", "xfail", "xpass", "pass", "unsupported", "skipped")
#: Statuses whose errors were measured (their ULP counts toward a cell's worst).
_MEASURED = frozenset({"pass", "mismatch", "xfail", "xpass", "known"})
_DEFECT_PREFIX = "torch defect "
#: Where the generated torch-defects page lives relative to the conformance page.
DEFECTS_PAGE = "torch-defects.md"


@dataclass
class Cell:
    """The records of one row in one run, aggregated."""

    counts: dict[str, int] = field(default_factory=dict)
    worst_ulp: float | None = None
    defects: list[str] = field(default_factory=list)
    other_known: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The worst status present (`SEVERITY` order)."""
        return next(s for s in SEVERITY if self.counts.get(s))

    @property
    def unexplained(self) -> bool:
        """A mismatch or error that no known defect accounts for."""
        return bool(self.counts.get("error") or self.counts.get("mismatch"))

    def add(self, record: Record) -> None:
        self.counts[record.status] = self.counts.get(record.status, 0) + 1
        if record.status in _MEASURED and record.max_ulp is not None:
            u, w = float(record.max_ulp), self.worst_ulp
            if w is None or (not math.isnan(w) and (math.isnan(u) or u > w)):
                self.worst_ulp = u  # NaN is the worst and stays
        if record.status in ("xfail", "xpass") and record.known:
            if record.known.startswith(_DEFECT_PREFIX):
                _append_new(self.defects, record.known[len(_DEFECT_PREFIX) :].strip())
            else:
                _append_new(self.other_known, record.known)

    def to_dict(self) -> dict[str, Any]:
        ulp = self.worst_ulp
        return {
            "status": self.status,
            "counts": dict(sorted(self.counts.items(), key=lambda kv: SEVERITY.index(kv[0]))),
            "worst_ulp": None if ulp is None else (str(ulp) if not math.isfinite(ulp) else ulp),
            "defects": list(self.defects),
            "known": list(self.other_known),
        }

    def markdown(self, defects_page: str = DEFECTS_PAGE) -> str:
        """The cell as Markdown: status (bold when unexplained), counts, ULP, defect links."""
        status = self.status
        head = f"**{status}**" if status in ("error", "mismatch") else status
        parts = [head]
        others = [
            f"{s} {n}"
            for s, n in sorted(self.counts.items(), key=lambda kv: SEVERITY.index(kv[0]))
            if s != status or len(self.counts) > 1
        ]
        if others:
            parts = [head + " (" + ", ".join(others) + ")"]
        if self.worst_ulp is not None:
            parts.append(f"{_ulp_text(self.worst_ulp)} ULP")
        parts += [f"[{d}]({defects_page}#{d})" for d in self.defects]
        if self.other_known:
            parts.append("known: " + "; ".join(_md_escape(k) for k in self.other_known))
        return " · ".join(parts)


def _append_new(items: list[str], item: str) -> None:
    if item and item not in items:
        items.append(item)


def _ulp_text(u: float) -> str:
    if math.isnan(u):
        return "nan"
    if math.isinf(u):
        return "inf"
    return f"{u:.3g}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


RowKey = tuple[str, str, str, str]  # case, path family, device, dtype


@dataclass
class Run:
    """One run's identity on the page."""

    label: str
    source: str
    torch: str
    counts: dict[str, int]
    settings: dict[str, Any]
    environment: dict[str, Any]


@dataclass
class ConformanceTable:
    """Rows keyed by (case, path family, device, dtype), one `Cell` (or None) per run."""

    runs: list[Run]
    rows: dict[RowKey, list[Cell | None]]

    @property
    def devices(self) -> list[str]:
        return sorted({k[2] for k in self.rows})

    def unexplained(self) -> list[tuple[RowKey, str]]:
        """(row, run label) of every cell with a mismatch or error no known defect explains."""
        out = []
        for key, cells in self.rows.items():
            for run, cell in zip(self.runs, cells, strict=True):
                if cell is not None and cell.unexplained:
                    out.append((key, run.label))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: the runs, then one entry per row with a cell per run."""
        return {
            "runs": [
                {"label": r.label, "source": r.source, "torch": r.torch, "counts": r.counts}
                for r in self.runs
            ],
            "rows": [
                {
                    "case": k[0],
                    "family": k[1],
                    "device": k[2],
                    "dtype": k[3],
                    "cells": [None if c is None else c.to_dict() for c in cells],
                }
                for k, cells in self.rows.items()
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    def markdown(
        self,
        *,
        defects_page: str = DEFECTS_PAGE,
        command: str = "",
        title: str = "Conformance",
        notes: Sequence[str] = (),
    ) -> str:
        """The page: what was run, the unexplained failures, then the full table.

        Args:
            defects_page: where defect links point.
            command: the command that generated the page, shown on it.
            title: the page's heading.
            notes: Markdown paragraphs placed before the runs (e.g. how the runs were made).
        """
        lines = [f"# {title}", ""]
        lines += [
            "What torch's autograd gets right, per op (case), path family, dtype"
            + (" and device" if len(self.devices) > 1 else "")
            + ", measured by `verijac check` against exact SymPy derivatives; one column per "
            "torch version. A cell gives the worst status of the family's paths (with the count "
            "per status when they differ), the worst ULP error measured, and a link to the "
            f"[torch defect]({defects_page}) that explains a known failure (`xfail`: it showed; "
            "`xpass`: a covered path passed). **Bold** marks a mismatch or error that no known "
            "defect explains.",
            "",
        ]
        for note in notes:
            lines += [note, ""]
        if command:
            lines += ["Generated by:", "", "```bash", command, "```", ""]
        lines += ["## Runs", "", "| column | torch | run file | records | command |"]
        lines += ["| --- | --- | --- | --- | --- |"]
        for r in self.runs:
            counts = ", ".join(f"{n} {s}" for s, n in r.counts.items() if n)
            cmd = r.settings.get("command") or ""
            cmd_text = f"`{_md_escape(str(cmd))}`" if cmd else ""
            lines.append(f"| {r.label} | {r.torch} | `{r.source}` | {counts} | {cmd_text} |")
        lines.append("")
        bad = self.unexplained()
        lines += ["## Unexplained failures", ""]
        if bad:
            for (case, fam, dev, dt), label in bad:
                lines.append(f"- {label}: `{case}` / {fam} [{dev}, {dt}]")
        else:
            lines.append("None: every mismatch and error is a known torch defect.")
        lines += ["", "## Table", ""]
        show_device = len(self.devices) > 1
        head = ["op (case)", "path family"] + (["device"] if show_device else []) + ["dtype"]
        head += [r.label for r in self.runs]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| " + " | ".join("---" for _ in head) + " |")
        for (case, fam, dev, dt), cells in self.rows.items():
            row = [f"`{case}`", fam] + ([dev] if show_device else []) + [dt]
            row += ["—" if c is None else c.markdown(defects_page) for c in cells]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        return "\n".join(lines)


def _labels(reports: Sequence[Report], sources: Sequence[str]) -> list[str]:
    versions = [str(r.environment.get("torch", "?")) for r in reports]
    labels = []
    for v, src in zip(versions, sources, strict=True):
        label = f"torch {v}"
        if versions.count(v) > 1:
            label += f" ({src})"
        labels.append(label)
    return labels


def build_table(
    reports: Sequence[Report], *, sources: Sequence[str] = (), families: Iterable[str] = ()
) -> ConformanceTable:
    """Aggregate the records of ``reports`` (one column each) into a `ConformanceTable`.

    Args:
        reports: one `Report` per run, e.g. from `verijac.load_run`.
        sources: the run files' names, for the page (default ``run 1``, ``run 2`` …).
        families: only these path families (default: every family in the runs).

    Raises:
        UsageError: no reports.
    """
    from ._errors import UsageError

    if not reports:
        raise UsageError("conformance needs at least one run file (verijac check --json RUN.json)")
    names = list(sources) or [f"run {k + 1}" for k in range(len(reports))]
    if len(names) != len(reports):
        raise UsageError(f"got {len(names)} source names for {len(reports)} reports")
    wanted = set(families)
    runs = [
        Run(label, src, str(rep.environment.get("torch", "?")), rep.counts(), dict(rep.settings),
            dict(rep.environment))
        for label, src, rep in zip(_labels(reports, names), names, reports, strict=True)
    ]  # fmt: skip
    rows: dict[RowKey, list[Cell | None]] = {}
    for k, rep in enumerate(reports):
        for rec in rep.records:
            if wanted and rec.family not in wanted:
                continue
            key = (rec.case, rec.family, rec.device, rec.dtype)
            cells = rows.setdefault(key, [None] * len(reports))
            cell = cells[k]
            if cell is None:
                cell = cells[k] = Cell()
            cell.add(rec)
    order = _family_order(reports)
    ordered = dict(
        sorted(
            rows.items(),
            key=lambda kv: (kv[0][0], order.get(kv[0][1], len(order)), kv[0][1], kv[0][2],
                            _dtype_rank(kv[0][3])),
        )
    )  # fmt: skip
    return ConformanceTable(runs, ordered)


def _family_order(reports: Sequence[Report]) -> dict[str, int]:
    """Path families in the order they first appear (the catalogue's order)."""
    out: dict[str, int] = {}
    for rep in reports:
        for rec in rep.records:
            out.setdefault(rec.family, len(out))
    return out


def _dtype_rank(dtype: str) -> tuple[int, str]:
    ranks = {"float64": 0, "float32": 1, "float16": 2, "bfloat16": 3}
    return (ranks.get(dtype, len(ranks)), dtype)


__all__ = ["DEFECTS_PAGE", "SEVERITY", "Cell", "ConformanceTable", "Run", "build_table"]
