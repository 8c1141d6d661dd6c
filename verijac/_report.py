"""Result records of a check, the report that collects them, and their JSON / JUnit forms."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._diagnosis import Diagnosis

STATUSES = ("pass", "mismatch", "unsupported", "error", "skipped", "xfail", "xpass", "known")
_FLOAT_FIELDS = ("max_abs", "max_rel", "max_ulp", "rtol", "atol", "expected", "actual")


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.6g}"


@dataclass
class Record:
    """The outcome of one case × path × device × dtype.

    ``status`` is ``pass``, ``mismatch`` (numbers, or a documented behaviour not shown),
    ``unsupported`` (the path does not apply; ``reason`` says why), ``error`` (an exception,
    or a defect of the case), ``skipped`` (device or dtype not available), ``xfail`` (a
    failure a known torch defect explains: an entry of the torch-defects registry covering
    this torch version, or the case's ``known_failures``; ``known`` names it and ``reason``
    gives it with what was observed), ``xpass`` (a covered path that passed: the defect may
    be fixed) or ``known`` (a failure the baseline run already had). ``entry`` names the
    worst entry in the case's terms. For a mismatch or an xfail
    ``point`` is the minimal failing point, and ``index``, ``expected``, ``actual`` and the
    errors are those of its worst entry; otherwise the errors are the greatest over every
    point checked.
    """

    case: str
    path: str
    family: str
    computes: str
    device: str
    dtype: str
    status: str
    points: int
    seed: int
    max_abs: float | None = None
    max_rel: float | None = None
    max_ulp: float | None = None
    rtol: float | None = None
    atol: float | None = None
    reason: str = ""
    point: dict[str, Any] | None = None
    index: list[int] | None = None
    expected: float | None = None
    actual: float | None = None
    duration: float = 0.0
    reproduce: str = ""
    tangent: list[float] | None = None
    cotangent: list[float] | None = None
    allowed: float | None = None
    warnings: list[str] = field(default_factory=list)
    #: What made this record an ``xfail``/``xpass`` or a ``known`` failure: ``"torch defect
    #: ID"``, ``"case known_failures[KEY]"`` or ``"baseline"``; empty otherwise.
    known: str = ""
    #: The worst entry in the case's own terms (``∂out[1]/∂A[0,1]``); ``index`` is the same
    #: entry in the flat layout of the path's result.
    entry: str = ""
    #: For a numeric mismatch, what the whole failing batch shows (`verijac._evidence.measure`):
    #: counts of failing points and entries, the error's shape (a constant factor, a sign
    #: flip, zero, NaN/inf, swapped partials), where the failing points lie, and
    #: ``fails_alone`` (whether the worst point still fails when checked alone). ``None``
    #: otherwise. `Report.diagnoses` groups records by cause from it.
    evidence: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("mismatch", "error")

    @property
    def key(self) -> tuple[str, str, str, str]:
        """``(case, path, device, dtype)``: what identifies a record within a run."""
        return (self.case, self.path, self.device, self.dtype)

    @property
    def label(self) -> str:
        """``case / path [device, dtype]``."""
        return f"{self.case} / {self.path} [{self.device}, {self.dtype}]"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; NaN and ±inf become the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
        out = asdict(self)
        for key in (*_FLOAT_FIELDS, "allowed"):
            out[key] = _encode(out[key])
        for key in ("point", "evidence"):
            if out[key] is not None:
                out[key] = _encode_tree(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        clean = {k: v for k, v in data.items() if k in known}
        for key in (*_FLOAT_FIELDS, "allowed"):
            if key in clean:
                clean[key] = _decode(clean[key])
        for key in ("point", "evidence"):
            if clean.get(key) is not None:
                clean[key] = _decode_tree(clean[key])
        return cls(**clean)

    def brief(self) -> str:
        """One line: status, label, and expected vs actual at the worst entry (or the first
        line of the reason), for streaming failures whose full messages come later."""
        head = f"{self.status.upper()}: {self.label}"
        if self.expected is not None or self.actual is not None:
            where = f" at {self.entry}" if self.entry else ""
            return f"{head}: expected {_num(self.expected)}, actual {_num(self.actual)}{where}"
        first = self.reason.splitlines()[0] if self.reason else ""
        return f"{head}: {first[:160]}" if first else head

    def message(self) -> str:
        """The full human message: what failed, where, by how much, and how to reproduce it."""
        head = f"{self.status.upper()}: case {self.case!r}, path {self.path!r} ({self.computes}, {self.family})"
        lines = [
            head,
            f"  device {self.device}, dtype {self.dtype}, seed {self.seed}, {self.points} points checked",
        ]
        if self.reason:
            lines.append(f"  {self.reason}")
        if self.point is not None:
            lines.append(f"  minimal failing point: {_point_text(self.point)}")
        if self.tangent is not None:
            lines.append(f"  tangent: {self.tangent}")
        if self.cotangent is not None:
            lines.append(f"  cotangent: {self.cotangent}")
        if self.expected is not None or self.actual is not None:
            where = f" at index {self.index}" if self.index is not None else ""
            if self.entry:
                where = f" at {self.entry} (index {self.index})"
            lines.append(f"  expected {_num(self.expected)}, actual {_num(self.actual)}{where}")
        if self.max_abs is not None:
            allowed = f" (allowed {_num(self.allowed)} there)" if self.allowed is not None else ""
            rel = _num(self.max_rel)
            if self.expected == 0 and (self.max_abs or 0) > 0 and not self.max_rel:
                rel = "undefined (the exact value is 0)"
            # An error ended the check: the figures are those of the points that passed before
            # it, not the error's.
            before = (
                "before it: " if self.status in ("error", "xfail") and self.actual is None else ""
            )
            lines.append(
                f"  {before}abs error {_num(self.max_abs)}, rel error {rel}, "
                f"{_num(self.max_ulp)} ULP; tolerance rtol={_num(self.rtol)}, atol={_num(self.atol)}{allowed}"
            )
        for w in self.warnings:
            lines.append(f"  torch warned: {w}")
        if self.reproduce:
            lines.append(f"  reproduce: {self.reproduce}")
        return "\n".join(lines)


def _point_text(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in point.items())


def _encode(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def _decode(x: Any) -> Any:
    if isinstance(x, str) and x in ("nan", "inf", "-inf"):
        return float(x)
    return x


def _encode_tree(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _encode_tree(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_encode_tree(v) for v in x]
    return _encode(x)


def _decode_tree(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _decode_tree(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_decode_tree(v) for v in x]
    return _decode(x)


#: What an unsupported record's reason says is missing, and how to add it: (pattern in the
#: reason, capability, remedy). The first match names the gap; others are grouped by reason.
CAPABILITY_GAPS: tuple[tuple[str, str, str], ...] = (
    (
        r"jvp|forward[- ]mode|forward AD",
        "no forward-mode rule",
        "add a jvp (autograd.Function) or register one to check them",
    ),
    (
        r"vmap|[Bb]atching rule",
        "no vmap support",
        "add a vmap staticmethod or generate_vmap_rule = True to check them",
    ),
    (
        r"once_differentiable|double backward|derivative for .* is not implemented",
        "not twice differentiable",
        "make backward differentiable (no once_differentiable) to check them",
    ),
    (
        r"data-dependent control flow|tracing tensor",
        "not traceable (data-dependent control flow)",
        "use torch.where instead of Python branches on tensor values to check them",
    ),
    (r"no autograd formula", "no autograd formula", "register a backward to check them"),
)


@dataclass
class Report:
    """Every record of one check, the seed it ran with and its settings.

    Attributes:
        records: one per case × path × device × dtype.
        seed: the run's seed (`verijac.check` with ``seed=`` reproduces it).
        settings: profile, batches, TF32 flag, devices, dtypes, tolerances, reference …
        environment: versions the run measured (torch and its git hash, CUDA, cuDNN, device
            names, Python, SymPy, Hypothesis, verijac).
        cases: case name → hash of its expressions and domain (`verijac diff` tells a
            changed case from a changed torch).
    """

    records: list[Record] = field(default_factory=list)
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    cases: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No mismatch and no error (unsupported, skipped, xfail and xpass records do not fail
        a check)."""
        return not self.failures

    @property
    def checked(self) -> int:
        """Records whose path ran against the exact derivatives (not unsupported or skipped)."""
        return sum(r.status not in ("unsupported", "skipped") for r in self.records)

    @property
    def failures(self) -> list[Record]:
        return [r for r in self.records if r.failed]

    @property
    def unexpected_passes(self) -> list[Record]:
        """``xpass`` records: known failures that did not show (the torch defect may be fixed)."""
        return [r for r in self.records if r.status == "xpass"]

    def counts(self) -> dict[str, int]:
        """Records per status (every status present, zero included)."""
        out = dict.fromkeys(STATUSES, 0)
        for r in self.records:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def summary(self) -> str:
        """Counts per status and, per path, the worst errors over its records."""
        counts = self.counts()
        total = len(self.records)
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"verijac: {verdict}: {total} records, "
            + ", ".join(
                f"{counts[s]} {s}"
                for s in STATUSES
                if counts[s] or s not in ("xfail", "xpass", "known")
            )
            + f" (seed {self.seed}{self._reference_note()})"
        ]
        worst: dict[str, list[float]] = {}
        for r in self.records:
            if r.max_abs is None or r.status in ("xfail", "known"):  # see its record
                continue
            w = worst.setdefault(r.path, [0.0, 0.0, 0.0])
            for i, v in enumerate((r.max_abs, r.max_rel, r.max_ulp)):
                if v is not None and (v > w[i] or math.isnan(v)):
                    w[i] = v
        if worst:
            width = max(len(p) for p in worst)
            lines.append(f"  {'path':<{width}}  {'max abs':>10}  {'max rel':>10}  {'max ULP':>10}")
            for p, (a, rel, u) in worst.items():
                lines.append(f"  {p:<{width}}  {_num(a):>10}  {_num(rel):>10}  {_num(u):>10}")
        return "\n".join(lines)

    def _reference_note(self) -> str:
        """``"; reference: …"`` when it is not the default float64 one."""
        reference = str(self.settings.get("reference", ""))
        return f"; reference: {reference}" if reference.startswith("mpmath") else ""

    def capability_summary(self) -> list[str]:
        """What was not verified and why: one line per missing capability (or other reason)
        with the number of paths per dtype it kept from running, and how to add it."""
        import re

        unsupported = [r for r in self.records if r.status == "unsupported"]
        if not unsupported:
            return []
        groups_per_dtype = max(len({(r.case, r.device, r.dtype) for r in self.records}), 1)
        total = len(self.records) // groups_per_dtype
        gaps: dict[str, tuple[set[str], str]] = {}
        for r in unsupported:
            name, remedy = r.reason.splitlines()[0][:120] if r.reason else "no reason given", ""
            # Matched without quoted names: "path 'func.vmap_grad' requires a scalar output"
            # is the case's shape, not a missing vmap rule.
            said = re.sub(r"'[^']*'", "''", r.reason)
            for pattern, capability, fix in CAPABILITY_GAPS:
                if re.search(pattern, said):
                    name, remedy = capability, fix
                    break
            paths, _ = gaps.setdefault(name, (set(), remedy))
            paths.add(r.path)
        lines = []
        for name, (paths, remedy) in sorted(gaps.items(), key=lambda kv: -len(kv[1][0])):
            tail = f"; {remedy}" if remedy else ""
            shown = ", ".join(sorted(paths)[:4]) + (", …" if len(paths) > 4 else "")
            lines.append(
                f"{name}: {len(paths)} of {total} paths per dtype cannot run ({shown}){tail}"
            )
        return lines

    def diagnoses(self) -> list[Diagnosis]:
        """The causes the failures share, case by case: which rule is wrong (from which paths
        fail and which pass), the shape of the error and where the failing points lie, each
        with its evidence (see docs/diagnosis.md). Empty when the report passed."""
        from ._diagnosis import diagnose

        return diagnose(self.records)

    def failure_text(self) -> str:
        """The failures as the report prints them: each diagnosis with the records it explains
        (one line each) and the full message of its worst record, then every failure no
        diagnosis explains in full; ``""`` when nothing failed."""
        from ._diagnosis import failure_section

        return "\n\n".join(failure_section(self.records))

    def __str__(self) -> str:
        parts = [self.summary()]
        gaps = self.capability_summary()
        if gaps:
            parts.append("not verified (unsupported):\n" + "\n".join(f"  {g}" for g in gaps))
        failures = self.failure_text()
        if failures:
            parts.append(failures)
        xpass = self.unexpected_passes
        if xpass:
            parts.append(
                f"{len(xpass)} known failure(s) did not show (xpass); the torch defect may be "
                "fixed:\n" + "\n".join(f"  {r.label}: {r.reason}" for r in xpass)
            )
        return "\n\n".join(parts)

    # -- export --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The run-file form (see `verijac.load_run`): schema and version, environment,
        settings, case hashes, counts and every record."""
        from ._runfile import run_dict

        return run_dict(self)

    def to_json(self) -> str:
        """Strict JSON (no NaN literals) of `to_dict`."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Report:
        """Rebuild a report written by `to_json`.

        Raises:
            RunFileError: the text is not a valid run file (the message says what is wrong).
        """
        from ._runfile import parse_run

        return parse_run(text)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write `to_json` to ``path`` atomically (never a half-written file).

        Raises:
            UsageError: the file cannot be written.
        """
        write_text_atomic(path, self.to_json())

    def junit_xml(self) -> str:
        """JUnit XML: one testcase per record; mismatch → failure, error → error,
        unsupported, skipped and xfail → skipped (with the reason), xpass → a passing testcase
        whose output says the known failure did not show."""
        import xml.etree.ElementTree as ET

        counts = self.counts()
        suites = ET.Element("testsuites")
        suite = ET.SubElement(
            suites,
            "testsuite",
            name="verijac",
            tests=str(len(self.records)),
            failures=str(counts["mismatch"]),
            errors=str(counts["error"]),
            skipped=str(
                counts["unsupported"] + counts["skipped"] + counts["xfail"] + counts["known"]
            ),
            time=f"{sum(r.duration for r in self.records):.3f}",
        )
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="seed", value=str(self.seed))
        for key, value in self.settings.items():
            ET.SubElement(props, "property", name=str(key), value=str(value))
        for r in self.records:
            tc = ET.SubElement(
                suite,
                "testcase",
                classname=f"verijac.{r.case}",
                name=f"{r.path}[{r.device}-{r.dtype}]",
                time=f"{r.duration:.3f}",
            )
            first = r.reason.splitlines()[0] if r.reason else r.status
            if r.status == "mismatch":
                ET.SubElement(tc, "failure", message=first, type="mismatch").text = r.message()
            elif r.status == "error":
                ET.SubElement(tc, "error", message=first, type="error").text = r.message()
            elif r.status in ("unsupported", "skipped"):
                ET.SubElement(tc, "skipped", message=f"{r.status}: {r.reason}")
            elif r.status in ("xfail", "known"):
                ET.SubElement(
                    tc, "skipped", message=f"{r.status}: {r.reason}", type=r.status
                ).text = r.message()
            elif r.status == "xpass":
                ET.SubElement(tc, "system-out").text = f"xpass: {r.reason}"
        return ET.tostring(suites, encoding="unicode")

    def write_junit(self, path: str | os.PathLike[str]) -> None:
        """Write the JUnit XML to ``path`` atomically.

        Raises:
            UsageError: the file cannot be written.
        """
        write_text_atomic(path, '<?xml version="1.0" encoding="utf-8"?>\n' + self.junit_xml())

    def extend(self, records: Iterable[Record]) -> None:
        self.records.extend(records)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then move it into place.

    The text is built before anything is opened, and a failure or an interrupt leaves the old
    file (or none) and no temporary file. A symlink is written through to its target; an
    existing file keeps its permissions, a new one gets 0666 less the umask.

    Raises:
        UsageError: the directory or file cannot be written.
    """
    import tempfile

    from ._errors import UsageError

    name = os.fspath(path)
    # Through a symlink to its target: replacing the link itself would cut it.
    target = os.path.realpath(name) if os.path.islink(name) else name
    directory = os.path.dirname(target) or "."
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:  # a new file gets what open() would give it: 0666 less the umask
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory
        )
    except OSError as exc:
        raise UsageError(f"cannot write {name!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        raise UsageError(f"cannot write {target!r}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


__all__ = ["STATUSES", "Record", "Report", "write_text_atomic"]
