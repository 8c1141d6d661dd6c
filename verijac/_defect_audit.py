"""Which parts of a known-defect entry never showed in the given runs.

An entry of the registry turns the mismatches of every record it covers into ``xfail``. An
entry wider than the defect covers records where the defect never shows, and a *new* defect
there would be taken for the known one: a false pass. ``verijac defects --audit RUN.json …``
lists, per entry, the paths and cases whose records it covered were all ``xpass`` (the known
failure did not show) across the runs, as candidates for narrowing the entry. It proves
nothing alone: a defect confined to a region of the domain (near zero, near a tie) may not be
hit in a short run; more runs, seeds and torch versions make the list trustworthy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._report import Report

_PREFIX = "torch defect "


@dataclass(frozen=True)
class Unshown:
    """One entry's paths (or cases) that it covered in the runs without the defect showing."""

    entry: str
    axis: str  # "path" or "case"
    names: tuple[str, ...]
    records: int  # the xpass records of those names
    shown: int  # the entry's xfail records (elsewhere)

    def line(self) -> str:
        shown = ", ".join(self.names)
        return (
            f"{self.entry}: never showed on {len(self.names)} {self.axis}(s) it covers "
            f"({self.records} xpass, against {self.shown} xfail elsewhere): {shown}"
        )


def audit(runs: Sequence[Report]) -> list[Unshown]:
    """Per known-defect entry, the paths and the cases where every record it covered in
    ``runs`` was ``xpass``. Entries that never showed at all are listed with every path."""
    per: dict[str, dict[str, dict[str, Counter[str]]]] = defaultdict(
        lambda: {"path": defaultdict(Counter), "case": defaultdict(Counter)}
    )
    for report in runs:
        for r in report.records:
            if r.status not in ("xfail", "xpass") or not r.known.startswith(_PREFIX):
                continue
            entry = r.known[len(_PREFIX) :].split()[0]
            per[entry]["path"][r.path][r.status] += 1
            per[entry]["case"][r.case][r.status] += 1
    out: list[Unshown] = []
    for entry in sorted(per):
        shown = sum(c["xfail"] for c in per[entry]["path"].values())
        for axis in ("path", "case"):
            names = sorted(n for n, c in per[entry][axis].items() if not c["xfail"])
            if names:
                xpass = sum(per[entry][axis][n]["xpass"] for n in names)
                out.append(Unshown(entry, axis, tuple(names), xpass, shown))
    return out


__all__ = ["Unshown", "audit"]
