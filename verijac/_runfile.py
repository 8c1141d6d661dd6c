"""Run files: a `Report` as versioned JSON that other runs can be compared with.

A run file holds the schema name and version, the environment the run measured (torch
version and git hash, CUDA and cuDNN versions, device names, Python, SymPy, Hypothesis and
verijac versions), the settings (seed, profile, tolerances, TF32, reference), a hash per case
of its expressions and domain, one record per case × path × device × dtype (a numeric
mismatch with its ``evidence``), and the ``diagnoses``: the causes its failures share
(`Report.diagnoses`, docs/diagnosis.md). Loading validates all of it: a truncated, foreign or
newer file is refused with one clear line. A file written before diagnoses existed has
neither ``evidence`` nor ``diagnoses`` and loads as it did; the diagnoses of a loaded report
are computed again from its records.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import UsageError

if TYPE_CHECKING:
    from ._case import Case
    from ._report import Report

SCHEMA = "verijac-run"
SCHEMA_VERSION = 1
#: Settings that must agree for two shards to be merged (and that `diff` reports when not).
RUN_SETTINGS = ("seed", "profile", "max_examples", "batch_size", "tf32", "reference", "command")


class RunFileError(UsageError):
    """A run file is missing, not JSON, of another schema or version, or malformed."""


def case_hash(case: Case) -> str:
    """A short hash of what defines a case's truth: inputs, outputs, domain, exclusions."""
    import sympy

    parts = [
        case.name,
        repr([(v.name, tuple(v.shape)) for v in case.variables]),
        sympy.srepr(tuple(case.out_exprs)),
        repr(sorted((name, repr(iv)) for name, iv in case.domain.items())),
        sympy.srepr(tuple(getattr(case, "exclude", ()) or ())),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def environment(devices: Sequence[str]) -> dict[str, Any]:
    """What the run measured on: versions of everything that decides the numbers."""
    import hypothesis
    import sympy
    import torch

    from . import __version__

    cudnn = None
    if torch.backends.cudnn.is_available():
        cudnn = torch.backends.cudnn.version()
    names: dict[str, str] = {}
    for d in devices:
        if d.startswith("cuda") and torch.cuda.is_available():
            try:
                names[d] = torch.cuda.get_device_name(torch.device(d))
            except (RuntimeError, AssertionError):
                names[d] = "unavailable"
        elif d == "cpu":
            names[d] = platform.processor() or platform.machine()
        else:
            names[d] = d
    return {
        "verijac": __version__,
        "torch": str(torch.__version__),
        "torch_git": str(getattr(torch.version, "git_version", "") or ""),
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "devices": names,
        "python": platform.python_version(),
        "sympy": sympy.__version__,
        "hypothesis": hypothesis.__version__,
        "platform": platform.platform(),
    }


def run_dict(report: Report) -> dict[str, Any]:
    """The run-file form of ``report`` (JSON-ready)."""
    settings = dict(report.settings)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "seed": report.seed,
        "environment": report.environment,
        "settings": settings,
        "cases": dict(sorted(report.cases.items())),
        "counts": report.counts(),
        "records": [r.to_dict() for r in report.records],
        "diagnoses": [d.to_dict() for d in report.diagnoses()],
    }


def load_run(path: str | os.PathLike[str]) -> Report:
    """Read and validate a run file.

    Raises:
        RunFileError: the file cannot be read, is empty, truncated, not JSON, of another
            schema, from a newer verijac, or a field is missing or has the wrong type.
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise RunFileError(f"cannot read run file {name!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RunFileError(f"run file {name!r} is not text (expected JSON)") from None
    return parse_run(text, source=name)


def parse_run(text: str, *, source: str = "<text>") -> Report:
    """Validate the text of a run file and rebuild its `Report`.

    Raises:
        RunFileError: as `load_run`.
    """
    from ._evidence import evidence_problem
    from ._report import STATUSES, Record, Report

    if not text.strip():
        raise RunFileError(f"run file {source!r} is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        body = text.strip()
        cut = body.startswith(("{", "[")) and not body.endswith(("}", "]"))
        what = "truncated" if cut or exc.pos >= len(body) else "not valid JSON"
        raise RunFileError(
            f"run file {source!r} is {what} (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise RunFileError(
            f'{source!r} is not a verijac run file (no "schema": {SCHEMA!r}); write one with '
            "`verijac check --json FILE`"
        )
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunFileError(f"{source!r}: schema_version must be an integer, got {version!r}")
    if version > SCHEMA_VERSION:
        raise RunFileError(
            f"{source!r} has run-file schema version {version}, newer than this verijac reads "
            f"({SCHEMA_VERSION}); upgrade verijac"
        )
    if version < 1:
        raise RunFileError(f"{source!r}: unknown schema_version {version}")
    _field(data, "seed", int, source)
    for key in ("environment", "settings", "cases"):
        _field(data, key, dict, source)
    records = _field(data, "records", list, source)
    out = []
    required = ("case", "path", "family", "computes", "device", "dtype", "status", "points", "seed")
    for k, raw in enumerate(records):
        where = f"{source!r}, record #{k + 1}"
        if not isinstance(raw, dict):
            raise RunFileError(f"{where}: expected an object, got {type(raw).__name__}")
        missing = [f for f in required if f not in raw]
        if missing:
            raise RunFileError(f"{where}: missing fields {missing}")
        if raw["status"] not in STATUSES:
            raise RunFileError(
                f"{where}: unknown status {raw['status']!r}; known: {list(STATUSES)}"
            )
        for f in ("case", "path", "device", "dtype"):
            if not isinstance(raw[f], str):
                raise RunFileError(f"{where}: {f} must be a string, got {raw[f]!r}")
        for f in ("max_abs", "max_rel", "max_ulp"):
            v = raw.get(f)
            if (
                v is not None
                and not isinstance(v, (int, float))
                and v not in ("nan", "inf", "-inf")
            ):
                raise RunFileError(f"{where}: {f} must be a number, got {v!r}")
        evidence = raw.get("evidence")
        if evidence is not None:
            if not isinstance(evidence, dict):
                raise RunFileError(
                    f"{where}: evidence must be an object or null, got {type(evidence).__name__}"
                )
            problem = evidence_problem(evidence)
            if problem:
                raise RunFileError(f"{where}: {problem}")
        try:
            out.append(Record.from_dict(raw))
        except (TypeError, ValueError) as exc:
            raise RunFileError(f"{where}: {exc}") from None
    _check_diagnoses(data, source)
    return Report(
        records=out,
        seed=data["seed"],
        settings=data["settings"],
        environment=data["environment"],
        cases={str(k): str(v) for k, v in data["cases"].items()},
    )


def _check_diagnoses(data: dict[str, Any], source: str) -> None:
    """Validate the optional ``diagnoses`` list (a report computes them again from its
    records; the list is for readers of the file).

    Raises:
        RunFileError: not a list of objects with a string ``case``, ``cause`` and ``text``.
    """
    found = data.get("diagnoses", [])
    if not isinstance(found, list):
        raise RunFileError(
            f"{source!r}: field 'diagnoses' must be list, got {type(found).__name__}"
        )
    for k, d in enumerate(found):
        where = f"{source!r}, diagnosis #{k + 1}"
        if not isinstance(d, dict):
            raise RunFileError(f"{where}: expected an object, got {type(d).__name__}")
        for f in ("case", "cause", "text"):
            if not isinstance(d.get(f), str):
                raise RunFileError(f"{where}: {f} must be a string, got {d.get(f)!r}")


def _field(data: dict[str, Any], key: str, kind: type, source: str) -> Any:
    if key not in data:
        raise RunFileError(f"{source!r}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RunFileError(
            f"{source!r}: field {key!r} must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


# -- shards and merging -------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → ``(K, N)`` with ``1 <= K <= N``.

    Raises:
        UsageError: another form.
    """
    k, sep, n = str(text).partition("/")
    try:
        if not sep:
            raise ValueError
        ki, ni = int(k), int(n)
    except ValueError:
        raise UsageError(f"shard must be K/N such as 2/3, got {text!r}") from None
    if not 1 <= ki <= ni:
        raise UsageError(f"shard K/N needs 1 <= K <= N, got {text!r}")
    return ki, ni


def in_shard(case: str, device: str, dtype: str, shard: tuple[int, int] | None) -> bool:
    """Whether the group case × device × dtype belongs to ``shard`` (a stable hash)."""
    if shard is None:
        return True
    k, n = shard
    digest = hashlib.sha256(f"{case}\0{device}\0{dtype}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % n == k - 1


def merge_runs(reports: Iterable[Report], *, sources: Sequence[str] = ()) -> Report:
    """Join shards of one run (same seed and settings) into one report.

    Raises:
        UsageError: no reports, settings that differ, a case hash that differs, or the same
            record in two shards.
    """
    from ._report import Report

    items = list(reports)
    if not items:
        raise UsageError("merge needs at least one run file")
    names = list(sources) or [f"run #{k + 1}" for k in range(len(items))]
    first = items[0]
    merged = Report(
        seed=first.seed,
        settings={k: v for k, v in first.settings.items() if k != "shard"},
        environment=dict(first.environment),
        cases=dict(first.cases),
    )
    seen: dict[tuple[str, str, str, str], str] = {}
    for name, rep in zip(names, items):
        if rep.seed != first.seed:
            raise UsageError(
                f"cannot merge {name}: seed {rep.seed} differs from {names[0]}'s {first.seed}"
            )
        for key in (*RUN_SETTINGS, "devices", "dtypes", "paths"):
            if rep.settings.get(key) != first.settings.get(key):
                raise UsageError(
                    f"cannot merge {name}: setting {key!r} is {rep.settings.get(key)!r}, "
                    f"{names[0]} has {first.settings.get(key)!r}"
                )
        if rep.environment.get("torch") != first.environment.get("torch"):
            raise UsageError(
                f"cannot merge {name}: torch {rep.environment.get('torch')} differs from "
                f"{names[0]}'s {first.environment.get('torch')}"
            )
        for case, digest in rep.cases.items():
            if merged.cases.setdefault(case, digest) != digest:
                raise UsageError(f"cannot merge {name}: case {case!r} differs (hash)")
        for r in rep.records:
            if r.key in seen:
                raise UsageError(
                    f"cannot merge {name}: {r.label} is also in {seen[r.key]} (overlapping shards)"
                )
            seen[r.key] = name
            merged.records.append(r)
    # Canonical order: case, device, dtype; the paths of a group keep their catalogue order.
    merged.records.sort(key=lambda r: (r.case, r.device, r.dtype))
    merged.cases = dict(sorted(merged.cases.items()))
    return merged


__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "RunFileError",
    "case_hash",
    "environment",
    "in_shard",
    "load_run",
    "merge_runs",
    "parse_run",
    "parse_shard",
    "run_dict",
]
