"""Failures grouped by cause: which rule is wrong, and what the error looks like.

One wrong rule fails many records: every reverse-mode path, in every dtype, with the same
error. `diagnose` groups the failing records of each case by the cause their pattern of
failing and passing paths points to, and states the evidence (counts, ratios, ranges):

==================  =========================================================================
cause               evidence
==================  =========================================================================
exception           several paths raise the same exception (or report the same case defect)
capability          paths that use a required capability fail because the op lacks it
values              ``contract.values``: the forward value itself is wrong
repeat_backward     ``contract.repeat_backward``: a second backward on one graph differs
cotangent_scaling   ``contract.cotangent_scaling``: backward is not linear in its grad
metadata            ``contract.grad_metadata``: a gradient's dtype, device or shape
batch               ``contract.batch_consistency``, or results whose worst point passes alone
vmap                ``contract.vmap_consistency``, or only paths that use vmap fail while
                    paths of the same mode without vmap pass
backward            reverse-mode paths fail, no forward-mode path does
jvp                 forward-mode paths fail, no reverse-mode path does
derivative          first-order paths of both modes fail
second_order        only second-order results fail
==================  =========================================================================

A cause is also confined to a dtype (or device) when its records all have it and the same
paths in the other dtypes ran and passed. The error's shape (`verijac._evidence`) and where
the failing points lie are stated only when every result with numbers agrees; mixed evidence
is reported as mixed. Diagnoses are computed from the records alone, so a loaded run file
gives the same ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._evidence import Region, pooled_points, pooled_shape

if TYPE_CHECKING:
    from ._report import Record

Key = tuple[str, str, str, str]

#: Cause → what it names, as the report's "Cause:" line says it (``{case}`` filled in).
CAUSES: dict[str, str] = {
    "exception": "one exception, the same in several records of {case}",
    "case_defect": "a defect of the case {case}, not of torch or the op",
    "capability": "a required capability {case} lacks",
    "values": "the forward value of {case} (not a derivative)",
    "repeat_backward": "the backward of {case} is not repeatable",
    "cotangent_scaling": "the backward rule of {case} does not scale with its incoming gradient",
    "metadata": "the gradient metadata of {case} (dtype, device or shape)",
    "batch": "a rule of {case} that depends on the batch",
    "vmap": "the vmap (batching) rule of {case}",
    "backward": "the backward (vjp) rule of {case}",
    "jvp": "the forward-mode (jvp) rule of {case}",
    "derivative": "the first derivative of {case} in both modes (backward and jvp rule alike)",
    "second_order": "the second-order (double-backward) rule of {case}",
}
#: Contract paths whose failure names a cause directly.
CONTRACT_CAUSES: dict[str, str] = {
    "contract.values": "values",
    "contract.repeat_backward": "repeat_backward",
    "contract.cotangent_scaling": "cotangent_scaling",
    "contract.grad_metadata": "metadata",
    "contract.batch_consistency": "batch",
    "contract.vmap_consistency": "vmap",
}
#: Paths that run backward more than once on one graph: a backward that is not repeatable
#: fails them.
REPEATING = frozenset({"reverse.accumulation", "contract.cotangent_scaling"})
#: A mode's name in the text.
MODES = {"reverse": "reverse-mode", "forward": "forward-mode", "second": "second-order"}
_PASSED = ("pass", "xpass")


@dataclass(frozen=True)
class Diagnosis:
    """One cause that failing records of a case share, with the evidence for it.

    Attributes:
        case: the case.
        cause: a key of `CAUSES`.
        records: ``(case, path, device, dtype)`` of the records it explains.
        summary: the cause and the pattern of failing and passing paths behind it, one sentence.
        shape: ``"factor"``, ``"sign"``, ``"zero"``, ``"nonfinite"``, ``"swap"`` when every
            failing entry with numbers shows it (`verijac._evidence`), else ``""``.
        factor: the constant factor actual / expected (``shape`` factor or sign).
        swap: pairs ``(coordinate, coordinate whose exact value it shows)``.
        dtypes / devices: the dtypes (devices) the cause is confined to, when the same paths
            pass in the others; ``()``: not confined.
        region: the threshold that separates failing from passing points, if one does.
        whole_domain: the shape fits every point checked, passing ones included.
        details: the "Error shape:" and "Points:" lines.
    """

    case: str
    cause: str
    records: tuple[Key, ...]
    summary: str
    shape: str = ""
    factor: float | None = None
    swap: tuple[tuple[str, str], ...] = ()
    dtypes: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    region: Region | None = None
    whole_domain: bool = False
    details: tuple[str, ...] = ()

    def text(self) -> str:
        """The paragraph the report prints: cause, error shape, points."""
        return "\n".join((f"Cause: {self.summary}", *self.details))

    def to_dict(self) -> dict[str, Any]:
        """The run-file form."""
        from dataclasses import asdict

        out = asdict(self)
        out["records"] = [list(k) for k in self.records]
        out["swap"] = [list(p) for p in self.swap]
        out["text"] = self.text()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        region = data.get("region")
        return cls(
            case=str(data["case"]),
            cause=str(data["cause"]),
            records=tuple((str(a), str(b), str(c), str(d)) for a, b, c, d in data["records"]),
            summary=str(data.get("summary", "")),
            shape=str(data.get("shape", "")),
            factor=data.get("factor"),
            swap=tuple((str(a), str(b)) for a, b in data.get("swap", ())),
            dtypes=tuple(data.get("dtypes", ())),
            devices=tuple(data.get("devices", ())),
            region=None
            if region is None
            else Region(
                coordinate=region["coordinate"],
                magnitude=bool(region["magnitude"]),
                side=region["side"],
                failing=(float(region["failing"][0]), float(region["failing"][1])),
                passing=(float(region["passing"][0]), float(region["passing"][1])),
            ),
            whole_domain=bool(data.get("whole_domain", False)),
            details=tuple(data.get("details", ())),
        )


# -- path traits ------------------------------------------------------------------------------


def _traits(record: Record) -> tuple[str, frozenset[str]]:
    """``(mode, uses)``: mode ``reverse``/``forward`` (first order), ``second``, ``contract``
    or ``other`` (behaviour paths), and the capabilities the path uses; from the path
    catalogue, or from the record's family and kind for a path not registered here."""
    from ._errors import VerijacError
    from ._tolerances import COMPUTES_ORDER
    from .paths._base import get_path

    try:
        path = get_path(record.path)
        uses, family, computes = frozenset(path.uses), path.family, path.computes
    except VerijacError:
        uses = frozenset({"forward_ad"}) if record.family == "forward" else frozenset()
        family, computes = record.family, record.computes
    order = COMPUTES_ORDER.get(computes, 0)
    if family == "contract":
        return "contract", uses
    if order == 2:
        return "second", uses
    if order == 1:
        return ("forward" if "forward_ad" in uses else "reverse"), uses
    return "other", uses


# -- grouping ---------------------------------------------------------------------------------


def diagnose(records: Iterable[Record]) -> list[Diagnosis]:
    """The causes the failing records share, case by case (none for a case that passes)."""
    by_case: dict[str, list[Record]] = {}
    for r in records:
        by_case.setdefault(r.case, []).append(r)
    out: list[Diagnosis] = []
    for case, recs in by_case.items():
        if any(r.failed for r in recs):
            out += _Case(case, recs).diagnose()
    return out


class _Case:
    """The records of one case, and which of its failures no diagnosis explains yet."""

    def __init__(self, case: str, records: list[Record]) -> None:
        self.case = case
        self.records = records
        self.left = [r for r in records if r.failed]
        self.found: list[Diagnosis] = []
        self.traits = {r.key: _traits(r) for r in records}
        self.devices = sorted({r.device for r in records if r.status != "skipped"})

    def mode(self, r: Record) -> str:
        return self.traits[r.key][0]

    def uses(self, r: Record) -> frozenset[str]:
        return self.traits[r.key][1]

    def passed(self, mode: str, *, without: str = "") -> list[Record]:
        """Records of ``mode`` that ran and passed (of paths not using ``without``)."""
        return [
            r
            for r in self.records
            if r.status in _PASSED and self.mode(r) == mode and without not in self.uses(r)
        ]

    def where(self, records: Sequence[Record]) -> str:
        return _where(records, self.devices)

    def claim(
        self, cause: str, chosen: Sequence[Record], summary: str, *, only: bool = False
    ) -> None:
        """A diagnosis of ``cause`` for the unexplained records among ``chosen`` (``only``:
        its title says no other rule fails)."""
        keys = {r.key for r in chosen}
        claimed = [r for r in self.left if r.key in keys]
        if not claimed:
            return
        self.left = [r for r in self.left if r.key not in keys]
        self.found.append(_build(self, cause, claimed, summary, only=only))

    # -- the rules, in order ------------------------------------------------------------------
    def diagnose(self) -> list[Diagnosis]:
        self.exceptions()
        self.left = [r for r in self.left if r.status == "mismatch"]
        self.capabilities()
        self.contracts()
        self.batch()
        self.vmap()
        self.modes()
        return self.found

    def exceptions(self) -> None:
        groups: dict[str, list[Record]] = {}
        for r in self.left:
            if r.status == "error":
                groups.setdefault(_normal(r.reason), []).append(r)
        for message, recs in groups.items():
            if len(recs) < 2:
                continue
            cause = "case_defect" if message.startswith("case defect") else "exception"
            verb = "report" if cause == "case_defect" else "raise"
            self.claim(
                cause,
                recs,
                f"{_paths(recs, verb=verb)} {self.where(recs)}: {_clip(message)}",
            )

    def capabilities(self) -> None:
        groups: dict[str, list[Record]] = {}
        for r in self.left:
            m = re.match(r"required capability (\w+): ", r.reason)
            if m:
                groups.setdefault(m.group(1), []).append(r)
        for capability, recs in groups.items():
            why = _clip(_normal(recs[0].reason.partition(": ")[2]))
            self.claim(
                "capability",
                recs,
                f"{_paths(recs, 'capability')} that use {capability}, declared required, "
                f"{_verb(recs, 'fail')} {self.where(recs)}: {why}",
            )

    def contract(self, name: str) -> tuple[list[Record], str]:
        """The unexplained failures of contract path ``name``, and ``"NAME fails in …: what
        it found"`` (the first clause of its reason)."""
        recs = [r for r in self.left if r.path == name]
        if not recs:
            return [], ""
        return recs, f"{name} fails {self.where(recs)}: {_clause(recs[0].reason)}"

    def contracts(self) -> None:
        values, text = self.contract("contract.values")
        self.claim("values", values, text)
        repeat, text = self.contract("contract.repeat_backward")
        if repeat:
            others = [r for r in self.left if r.path in REPEATING]
            once = self.passed("reverse")
            if others:
                text += (
                    f"; {_paths(others, count=False)}, which run backward more than once on "
                    f"one graph, {_verb(others, 'fail')} with it"
                )
            if once:
                text += (
                    f"; {_paths(once, count=False)}, with one backward pass, {_verb(once, 'pass')}"
                )
            self.claim("repeat_backward", repeat + others, text)
        scaling, text = self.contract("contract.cotangent_scaling")
        if scaling:
            # The reverse-mode failures follow from it, unless forward mode fails too (then
            # the derivative itself may be wrong as well: the mode rule decides).
            forward_fails = any(self.mode(r) == "forward" for r in self.left)
            reverse = [] if forward_fails else [r for r in self.left if self.mode(r) == "reverse"]
            if reverse:
                text += f"; {_paths(reverse, MODES['reverse'], verb='fail')} with it"
            self.claim("cotangent_scaling", scaling + reverse, text + self.contrast("forward"))
        metadata, text = self.contract("contract.grad_metadata")
        self.claim("metadata", metadata, text)

    def batch(self) -> None:
        contract, text = self.contract("contract.batch_consistency")
        alone = [r for r in self.left if (r.evidence or {}).get("fails_alone") is False]
        parts = [text] if contract else []
        if alone:
            parts.append(
                f"{_paths(alone, verb='fail')} on a batch of points {self.where(alone)}, and "
                "the worst point of each passes when checked alone"
            )
        if parts:
            self.claim("batch", contract + alone, "; ".join(parts))

    def vmap(self) -> None:
        contract, text = self.contract("contract.vmap_consistency")
        numeric = [r for r in self.left if self.mode(r) in MODES]
        failing_modes = list(dict.fromkeys(self.mode(r) for r in numeric))
        plain = [r for m in failing_modes for r in self.passed(m, without="vmap")]
        # Every failure uses vmap, and each failing mode has a path without vmap that passed.
        contrast = (
            bool(numeric)
            and all("vmap" in self.uses(r) for r in numeric)
            and all(self.passed(m, without="vmap") for m in failing_modes)
        )
        if not contract and not contrast:
            return
        parts = [text] if contract else []
        if contrast:
            parts.append(
                f"{_paths(numeric, verb='fail')}, all using vmap, {self.where(numeric)}; "
                f"{_paths(plain, verb='pass')} of the same mode{'s' if len(failing_modes) > 1 else ''} "
                "without vmap"
            )
        elif not numeric:
            plain = [r for m in MODES for r in self.passed(m, without="vmap")]
            if plain:
                parts.append(f"{_paths(plain, 'derivative', verb='pass')} without vmap")
        self.claim("vmap", contract + (numeric if contrast else []), "; ".join(parts))

    def contrast(self, mode: str) -> str:
        """``; all 3 forward-mode paths pass`` or ``; no forward-mode path ran (why)``; ``""``
        when some path of ``mode`` is still unexplained."""
        if any(self.mode(r) == mode for r in self.left):
            return ""
        passed = self.passed(mode)
        if passed:
            return f"; {_all(passed, MODES[mode])} {_verb(passed, 'pass')}"
        unsupported = [
            r for r in self.records if r.status == "unsupported" and self.mode(r) == mode
        ]
        why = f" ({_gap(unsupported[0].reason)})" if unsupported else ""
        return f"; no {MODES[mode]} path ran{why}"

    def modes(self) -> None:
        by_mode: dict[str, list[Record]] = {m: [] for m in MODES}
        for r in self.left:
            if self.mode(r) in by_mode:
                by_mode[self.mode(r)].append(r)
        rev, fwd, sec = by_mode["reverse"], by_mode["forward"], by_mode["second"]
        where = self.where(rev + fwd + sec)
        also = f"; {_paths(sec, MODES['second'], verb='fail')} with them" if rev or fwd else ""
        also = also if sec else ""
        if rev and not fwd:
            text = f"{_paths(rev, MODES['reverse'], verb='fail')} {where}{also}"
            self.claim("backward", rev + sec, text + self.contrast("forward"))
        elif fwd and not rev:
            text = f"{_paths(fwd, MODES['forward'], verb='fail')} {where}{also}"
            self.claim("jvp", fwd + sec, text + self.contrast("reverse"))
        elif rev and fwd:
            text = (
                f"{_paths(rev, MODES['reverse'])} and {_paths(fwd, MODES['forward'])} fail "
                f"{where}{also}"
            )
            self.claim("derivative", rev + fwd + sec, text)
        elif sec:
            first = self.passed("reverse") + self.passed("forward")
            text = f"{_paths(sec, MODES['second'], verb='fail')} {where}; "
            if first:
                text += f"{_all(first, 'first-order')} {_verb(first, 'pass')}"
            else:
                text += "no first-order path passed to compare with"
            plain = self.passed("second", without="double_backward")
            if plain and all("double_backward" in self.uses(r) for r in sec):
                text += f"; {_paths(plain, MODES['second'], verb='pass')} without double backward"
            first_fails = any(
                r.failed and self.mode(r) in ("reverse", "forward") for r in self.records
            )
            self.claim("second_order", sec, text, only=bool(first) and not first_fails)


# -- one diagnosis ----------------------------------------------------------------------------


def _build(
    case: _Case, cause: str, claimed: list[Record], summary: str, *, only: bool = False
) -> Diagnosis:
    dtypes = _confined(case.records, claimed, "dtype")
    devices = _confined(case.records, claimed, "device")
    title = CAUSES[cause].format(case=case.case) + (" only" if only else "")
    if dtypes:
        title += f", in {_and(dtypes)} only"
    if devices:
        title += f", on {_and(devices)} only"
    numeric = [(r.path, r.evidence) for r in claimed if r.evidence and r.evidence.get("failing")]
    shape, factor, swap, shape_line = pooled_shape(numeric, len(claimed))
    region, whole, points_line = pooled_points([e for _, e in numeric], shape)
    scope = ""
    if dtypes or devices:
        scope = "; the same paths pass in " + _and(
            sorted(
                {getattr(r, "dtype" if dtypes else "device") for r in case.records}
                - set(dtypes or devices)
            )
        )
    return Diagnosis(
        case=case.case,
        cause=cause,
        records=tuple(r.key for r in claimed),
        summary=f"{title} — {summary}{scope}.",
        shape=shape,
        factor=factor,
        swap=swap,
        dtypes=dtypes,
        devices=devices,
        region=region,
        whole_domain=whole,
        details=tuple(line for line in (shape_line, points_line) if line),
    )


def _confined(records: Sequence[Record], claimed: Sequence[Record], attr: str) -> tuple[str, ...]:
    """The values of ``attr`` (dtype or device) the claimed records are confined to: those
    they all have, when the same paths ran in the others and passed there; else ``()``."""
    mine = {getattr(r, attr) for r in claimed}
    ran = {getattr(r, attr) for r in records if r.status not in ("skipped", "unsupported")}
    if len(ran) < 2 or mine >= ran:
        return ()
    paths = {r.path for r in claimed}
    others = [r for r in records if r.path in paths and getattr(r, attr) not in mine]
    ran_others = [r for r in others if r.status not in ("skipped", "unsupported")]
    if ran_others and all(r.status in _PASSED for r in ran_others):
        return tuple(sorted(mine, key=lambda v: [getattr(r, attr) for r in records].index(v)))
    return ()


# -- text helpers -----------------------------------------------------------------------------


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _names(records: Sequence[Record]) -> list[str]:
    return list(dict.fromkeys(r.path for r in records))


#: Verbs in the plural → singular.
_SINGULAR = {"fail": "fails", "pass": "passes", "raise": "raises", "report": "reports"}


def _verb(records: Sequence[Record], verb: str) -> str:
    """``verb`` agreeing with the number of distinct paths in ``records``."""
    return _SINGULAR[verb] if len(_names(records)) == 1 else verb


def _paths(records: Sequence[Record], kind: str = "", *, count: bool = True, verb: str = "") -> str:
    """``2 reverse-mode paths (reverse.vjp_random, reverse.accumulation) fail``."""
    names = _names(records)
    shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
    if not count:
        text = shown
    else:
        word = f"{kind} path" if kind else "path"
        text = f"{len(names)} {word}{'s' if len(names) != 1 else ''} ({shown})"
    return f"{text} {_verb(records, verb)}" if verb else text


def _all(records: Sequence[Record], kind: str) -> str:
    """``all 3 forward-mode paths``, ``both …``, ``the forward-mode path forward.dual``."""
    names = _names(records)
    if len(names) == 1:
        return f"the {kind} path {names[0]}"
    head = "both" if len(names) == 2 else f"all {len(names)}"
    return f"{head} {kind} paths ({', '.join(names[:6])}{', …' if len(names) > 6 else ''})"


def _where(records: Sequence[Record], devices: Sequence[str]) -> str:
    """``in float64 and float32`` (and ``on cuda:0`` when the run has several devices or
    another than cpu)."""
    text = f"in {_and(list(dict.fromkeys(r.dtype for r in records)))}"
    if len(devices) > 1 or any(d != "cpu" for d in devices):
        text += f" on {_and(list(dict.fromkeys(r.device for r in records)))}"
    return text


def _gap(reason: str) -> str:
    """What an unsupported record's reason says is missing (`CAPABILITY_GAPS`), or its
    first clause."""
    from ._report import CAPABILITY_GAPS

    for pattern, capability, _ in CAPABILITY_GAPS:
        if re.search(pattern, reason):
            return f"unsupported: {capability}"
    return f"unsupported: {_clause(reason)}"


def _clause(reason: str) -> str:
    """The first clause of a reason (up to its first ``": "``), clipped."""
    return _clip(_normal(reason).partition(": ")[0], 100)


def _normal(reason: str) -> str:
    """A reason without what differs between paths of one cause: the batch a path was
    called with, where it was raised."""
    text = reason.splitlines()[0] if reason else ""
    text = re.sub(r" \(called with a batch of \d+ points\)", "", text)
    return re.sub(r" \(raised at [^)]*\)", "", text)


def _clip(text: str, limit: int = 140) -> str:
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- the failure section of a report ------------------------------------------------------------


def _excess(r: Record) -> float:
    """How far past its allowed error the record's worst entry is (-1 without numbers)."""
    if r.expected is None or r.actual is None or not r.allowed:
        return -1.0
    err = abs(r.actual - r.expected)
    return float("inf") if err != err else err / r.allowed


def _compact(records: Sequence[Record]) -> list[str]:
    """The records' paths, grouped by the dtypes (and devices) they fail in, wrapped."""
    import textwrap

    several = len({r.device for r in records}) > 1
    where: dict[str, list[str]] = {}
    for r in records:
        where.setdefault(r.path, []).append(f"{r.device} {r.dtype}" if several else r.dtype)
    groups: dict[tuple[str, ...], list[str]] = {}
    for path, found in where.items():
        groups.setdefault(tuple(found), []).append(path)
    lines: list[str] = []
    for places, paths in groups.items():
        n = len(paths)
        head = f"in {_and(list(places))} ({n} path{'s' if n != 1 else ''}): "
        lines += textwrap.wrap(
            head + ", ".join(paths), width=100, initial_indent="    ", subsequent_indent="      "
        )
    return lines


def failure_section(records: Sequence[Record]) -> list[str]:
    """The blocks the report prints for its failures: per diagnosis its paragraph, the
    records it explains in one line each, and the full message of its worst record; then the
    full message of every failure no diagnosis explains."""
    failures = [r for r in records if r.failed]
    diagnoses = diagnose(records)
    by_key = {r.key: r for r in failures}
    explained: set[Key] = set()
    blocks = []
    for d in diagnoses:
        recs = [by_key[k] for k in d.records if k in by_key]
        explained.update(d.records)
        # The record that shows the cause best: the greatest excess over its tolerance, else
        # the contract path that names the cause.
        worst = max(recs, key=lambda r: (_excess(r), CONTRACT_CAUSES.get(r.path) == d.cause))
        lines = [d.text()]
        if len(recs) > 1:
            lines.append(f"  {len(recs)} failing records:")
            lines += _compact(recs)
            lines.append(f"  the worst of them in full ({worst.label}):")
        blocks.append("\n".join(lines) + "\n" + worst.message())
    blocks += [r.message() for r in failures if r.key not in explained]
    return blocks


__all__ = ["CAUSES", "CONTRACT_CAUSES", "Diagnosis", "diagnose", "failure_section"]
