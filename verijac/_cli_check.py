"""``verijac check`` and ``verijac check-op``: run a check with progress, streamed failures,
a summary, output files and the exit status."""

from __future__ import annotations

import argparse
import importlib
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ._cli_info import _table
from ._errors import UsageError
from ._interrupt import interruptible
from ._options import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    select_cases,
)
from ._options import load_dirs as _load_dirs
from ._report import STATUSES

if TYPE_CHECKING:
    from ._report import Record, Report


class _Progress:
    """Progress on stderr: a bar redrawn with ``\\r`` on a terminal, else a line per case.

    Nothing is drawn during the first `DELAY` seconds, so quick runs stay quiet on a terminal.
    """

    DELAY = 0.5
    WIDTH = 24

    def __init__(
        self, total: int, n_cases: int, *, enabled: bool, stream: IO[str] | None = None
    ) -> None:
        stream = stream if stream is not None else sys.stderr
        # The bar redraws itself with \r: it writes past the escaping (its text is ours).
        self.stream: IO[str] = getattr(stream, "raw", stream)
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.total = max(total, 1)
        self.n_cases = n_cases
        self.done = 0
        self.failed = 0
        self.cases_done = 0
        self.start = time.perf_counter()
        self.current: str | None = None
        self.case_counts: dict[str, int] = {}
        self.drawn = False
        self.last_draw = 0.0

    def update(self, record: Record) -> None:
        if record.case != self.current:
            self._case_done()
            self.current = record.case
        self.done += 1
        self.failed += record.failed
        self.case_counts[record.status] = self.case_counts.get(record.status, 0) + 1
        self._draw()

    def _case_done(self) -> None:
        if self.current is None:
            return
        self.cases_done += 1
        if self.enabled and not self.tty:
            counts = ", ".join(f"{n} {s}" for s, n in self.case_counts.items())
            elapsed = time.perf_counter() - self.start
            print(
                f"verijac: [{self.cases_done}/{self.n_cases}] {self.current}: {counts} ({elapsed:.1f}s)",
                file=self.stream,
                flush=True,
            )
        self.case_counts = {}

    def _draw(self) -> None:
        if not (self.enabled and self.tty):
            return
        now = time.perf_counter()
        if now - self.start < self.DELAY or now - self.last_draw < 0.1:
            return
        self.last_draw = now
        filled = int(self.WIDTH * min(self.done / self.total, 1.0))
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        fails = f", {self.failed} failed" if self.failed else ""
        text = f"\r[{bar}] {self.done}/{self.total} checks{fails}  {self.current or ''}"
        self.stream.write(text[:200].ljust(80))
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        """Erase the bar so the next line on the terminal starts clean."""
        if self.drawn:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()
            self.drawn = False

    def finish(self) -> None:
        self._case_done()
        self.current = None
        self.clear()


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _summary_table(records: Sequence[Record], out: IO[str]) -> None:
    """Per path: records per status and the worst abs / rel / ULP error (known failures,
    ``xfail``, left out: their records show them)."""
    per_path: dict[str, dict[str, Any]] = {}
    for r in records:
        row = per_path.setdefault(r.path, {"statuses": dict.fromkeys(STATUSES, 0), "worst": None})
        row["statuses"][r.status] += 1
        if r.status == "xfail":
            continue
        if r.max_ulp is not None and (row["worst"] is None or _key(r) > _key(row["worst"])):
            row["worst"] = r
    rows = []
    for name, row in per_path.items():
        worst: Record | None = row["worst"]
        rows.append(
            (
                name,
                *(str(row["statuses"][s]) for s in STATUSES),
                _fmt(worst.max_abs if worst else None),
                _fmt(worst.max_rel if worst else None),
                _fmt(worst.max_ulp if worst else None),
            )
        )
    _table(("PATH", *(s.upper() for s in STATUSES), "MAX ABS", "MAX REL", "MAX ULP"), rows, out)


def _key(r: Record) -> float:
    v = r.max_ulp
    return float("inf") if v is None or v != v else float(v)


def _verdict(report: Report, elapsed: float, *, interrupted: bool, label: str = "check") -> str:
    counts = report.counts()
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    word = "INTERRUPTED" if interrupted else ("PASSED" if report.passed else "FAILED")
    return f"verijac {label}: {word}: {len(report.records)} checks ({parts or 'none ran'}) in {elapsed:.1f}s, seed={report.seed}"


def _execute(
    args: argparse.Namespace,
    *,
    label: str,
    n_cases: int,
    total: int,
    run: Callable[[int, Callable[[Record], None]], Report],
) -> int:
    """Run a check with progress, streamed failures, summary, files and exit status."""
    from ._report import Report

    _check_outputs(args)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    out = sys.stdout
    digits = getattr(args, "reference_digits", None)
    reference = "" if digits is None else f", reference: mpmath at {digits} digits"
    progress = _Progress(total, n_cases, enabled=not (args.quiet or args.no_progress))
    done: list[Record] = []

    def on_record(record: Record) -> None:
        done.append(record)
        progress.update(record)
        if record.failed:
            progress.clear()
            print(record.brief(), file=out, flush=True)  # in full, grouped by cause, below

    start = time.perf_counter()
    interrupted = False
    report: Report
    try:
        # Ctrl-C is taken over before the first line: a caller that interrupts once the run
        # has said it started must not land in Python's default handler, whose
        # KeyboardInterrupt a garbage-collection callback (Hypothesis installs one) can
        # swallow while the run hashes its cases; the run then went on to the end.
        with interruptible():
            print(
                f"verijac {label}: seed={seed}, {n_cases} case(s), {total} check(s){reference}",
                file=out,
                flush=True,
            )
            report = run(seed, on_record)
    except KeyboardInterrupt as exc:
        interrupted = True
        report = getattr(exc, "verijac_report", None) or Report(
            records=list(done), seed=seed, settings={"interrupted": True}
        )
    progress.finish()
    elapsed = time.perf_counter() - start
    if report.failures:
        print("\n" + report.failure_text(), file=out)
    if not args.quiet and report.records:
        print(file=out)
        _summary_table(report.records, out)
        gaps = report.capability_summary()
        if gaps:
            print("\nnot verified (unsupported):", file=out)
            for line in gaps:
                print(f"  {line}", file=out)
    if args.json:
        report.write_json(args.json)
    if args.junit:
        report.write_junit(args.junit)
    if args.update_baseline and not interrupted:
        from ._records import as_baseline

        as_baseline(report).write_json(args.baseline)
        print(f"verijac {label}: baseline written to {args.baseline}", file=out)
    print(_verdict(report, elapsed, interrupted=interrupted, label=label), file=out, flush=True)
    if interrupted:
        return EXIT_INTERRUPTED
    if report.records and not report.checked:
        reasons = sorted({r.reason for r in report.records})
        print(
            f"verijac {label}: nothing was checked: every record is unsupported or skipped "
            f"({'; '.join(reasons[:3])})",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK if report.passed else EXIT_FAILED


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse output files that cannot be written before the run, not after it.

    Raises:
        UsageError: an empty name, --json and --junit naming one file, a directory, a missing
            or unwritable parent, or --update-baseline without --baseline.
    """
    if args.update_baseline and not args.baseline:
        raise UsageError("--update-baseline needs --baseline FILE (the file to write)")
    if args.baseline and not args.update_baseline:
        from ._runfile import load_run

        load_run(args.baseline)  # a broken baseline is a usage error before the run
    named = [("--json", args.json), ("--junit", args.junit)]
    if args.update_baseline:
        named.append(("--baseline", args.baseline))
    seen: dict[str, str] = {}
    for option, name in named:
        if name is None:
            continue
        if not name.strip():
            raise UsageError(f"{option} needs a file name, got an empty one")
        real = os.path.realpath(name)
        if real in seen:
            raise UsageError(
                f"{seen[real]} and {option} name the same file {name!r}; give two files"
            )
        seen[real] = option
        if os.path.isdir(real):
            raise UsageError(f"{option} {name!r} is a directory; give a file name")
        parent = os.path.dirname(real) or "."
        if not os.path.isdir(parent):
            raise UsageError(f"{option} {name!r}: the directory {parent!r} does not exist")
        if not os.access(parent, os.W_OK) or (
            os.path.exists(real) and not os.access(real, os.W_OK)
        ):
            raise UsageError(f"{option} {name!r} cannot be written (permission denied)")


def _count(n_cases: int, args: argparse.Namespace, *, command: str = "check") -> int:
    """Records the run will produce (validates the path, device and dtype names first)."""
    from ._resolve import resolve_devices, resolve_dtypes, resolve_paths

    paths = resolve_paths(args.path or None, command=command)
    devices = resolve_devices(args.device or None)
    dtypes = resolve_dtypes(args.dtype or None)
    if not paths:
        raise UsageError("no path selected (see `verijac list --paths`)")
    return n_cases * len(paths) * len(devices) * len(dtypes)


def _devices(args: argparse.Namespace) -> list[str]:
    from ._resolve import resolve_devices

    return [d for d, _ in resolve_devices(args.device or None)]


def _dtypes(args: argparse.Namespace) -> list[str]:
    from ._resolve import resolve_dtypes

    return resolve_dtypes(args.dtype or None)


def _prefix(command: str, dirs: Sequence[str]) -> str:
    """``verijac COMMAND --cases-dir DIR …``: reproduction lines that find the user's cases."""
    parts = ["verijac", command]
    for d in dirs:
        parts += ["--cases-dir", str(Path(d).resolve())]
    return shlex.join(parts)


def _check_options(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The options `check` and `check-op` share, from the parsed command line."""
    return {
        "paths": args.path or None,
        "devices": args.device or None,
        "dtypes": args.dtype or None,
        "seed": seed,
        "max_examples": args.max_examples,
        "batch_size": args.batch_size,
        "time_budget": args.time_budget,
        "profile": args.profile,
        "tf32": args.tf32,
        "reference_digits": args.reference_digits,
        "baseline": args.baseline if args.baseline and not args.update_baseline else None,
    }


def _cmd_check(args: argparse.Namespace) -> int:
    from . import _runner
    from ._runfile import in_shard, parse_shard

    _load_dirs(args.cases_dir)
    cases = select_cases(args.case, args.tag)
    total = _count(len(cases), args)
    if args.shard:
        shard = parse_shard(args.shard)
        groups = [(c.name, d, t) for c in cases for d in _devices(args) for t in _dtypes(args)]
        total = total // max(len(groups), 1) * sum(in_shard(*g, shard) for g in groups)

    def run(seed: int, on_record: Callable[[Record], None]) -> Report:
        return _runner.run(
            cases,
            reproduce_prefix=_prefix("check", args.cases_dir),
            on_record=on_record,
            shard=args.shard,
            jobs=args.jobs,
            **_check_options(args, seed),
        )

    return _execute(args, label="check", n_cases=len(cases), total=total, run=run)


def _import_target(target: str) -> Any:
    """``MODULE:ATTR`` → the object, with the current directory importable."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected MODULE:ATTR such as 'mypkg.ops:softplus', got {target!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"cannot import module {module_name!r} ({type(exc).__name__}: {exc}); run from the "
            "directory that contains it or install it"
        ) from None
    except Exception as exc:  # the user's module itself is broken (SyntaxError, …)
        import traceback

        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f"{exc.filename}:{exc.lineno}: "
        raise UsageError(
            f"importing module {module_name!r} failed: {where}{type(exc).__name__}: {exc}"
        ) from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise UsageError(f"{target!r} must be a callable taking one tensor per input, got {obj!r}")
    return obj


def _cmd_check_op(args: argparse.Namespace) -> int:
    from ._checkop import check_op
    from ._registry import get_case

    _load_dirs(args.cases_dir)
    op = _import_target(args.target)
    case = get_case(args.case)
    total = _count(1, args, command="check-op")

    def run(seed: int, on_record: Callable[[Record], None]) -> Report:
        return check_op(
            op,
            case,
            on_record=on_record,
            require=tuple(args.require),
            reproduce_as=args.target,
            **_check_options(args, seed),
        )

    return _execute(args, label="check-op", n_cases=1, total=total, run=run)
