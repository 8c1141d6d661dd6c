"""The ``verijac table`` and ``verijac regress`` sub-commands.

Imported by `verijac._cli.build_parser` on every invocation, so nothing heavy (torch, SymPy,
mpmath) is imported at module level.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, TYPE_CHECKING, Any

from ._options import digits, positive_int, seed

if TYPE_CHECKING:
    from ._report import Record

_FORMATS = ("json", "csv", "md", "latex")


def _count(text: str) -> int:
    """A number of points: an integer >= 0."""
    if text == "0":
        return 0
    return positive_int(text)


def add_commands(sub: Any) -> None:
    """Add ``table`` and ``regress`` to ``sub`` (an argparse sub-parsers action)."""
    from ._cli import _add_cases_dir

    p = sub.add_parser(
        "table",
        help="write a reference table: exact f, J and H at known and generated points",
        description="Exact values of f, its Jacobian and (for one scalar output, or with "
        "--hessian) its Hessian at each case's known points and at generated points: the exact "
        "rational where there is one, a decimal, and the correctly rounded float64 and float32 "
        "with their bit patterns. The same command gives the same bytes.",
    )
    p.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="NAME",
        help="case name or glob (seed_*); repeatable; default: every case",
    )
    p.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="only cases with this tag"
    )
    p.add_argument(
        "--points",
        type=_count,
        default=2,
        metavar="N",
        help="generated points per case, besides the known ones (default 2)",
    )
    p.add_argument("--seed", type=seed, default=0, help="seed of the generated points (default 0)")
    p.add_argument(
        "--rational",
        action="store_true",
        help="generated points on the grid 1/16 (short exact values) instead of random "
        "float32 numbers",
    )
    p.add_argument(
        "--digits",
        type=digits,
        default=30,
        metavar="N",
        help="significant digits of the decimal column, 17-1000 (default 30)",
    )
    p.add_argument(
        "--hessian", action="store_true", help="the Hessian for every case, not only scalar ones"
    )
    p.add_argument(
        "--format", choices=_FORMATS, default="json", help="json (default), csv, md or latex"
    )
    p.add_argument("--output", "-o", metavar="FILE", help="write here (atomically); default stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _add_cases_dir(p)
    p.set_defaults(func=_cmd_table)

    p = sub.add_parser(
        "regress",
        help="check autograd paths against a reference table (no SymPy in the reference)",
        description="Run every selected path at the table's points and compare each entry "
        "with the table's value correctly rounded to the path's dtype: the error in ULPs of "
        "that dtype, pass/fail against the tolerance model, and the worst entry.",
    )
    p.add_argument("table", metavar="TABLE", help="a JSON table written by `verijac table`")
    p.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="PATH",
        help="path name, glob or family; repeatable; default: every path that is not opt-in",
    )
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="DEVICE",
        help="cpu, cuda, cuda:1, mps; repeatable; default: every available device",
    )
    p.add_argument(
        "--dtype",
        action="append",
        default=[],
        metavar="DTYPE",
        help="float64, float32, float16, bfloat16; repeatable; default: float64 and float32",
    )
    p.add_argument("--json", metavar="RUN.json", help="write the run file (for `verijac diff`)")
    p.add_argument("--quiet", "-q", action="store_true", help="only failures and the final line")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    _add_cases_dir(p)
    p.set_defaults(func=_cmd_regress)


class _Bar:
    """A progress bar on a terminal's stderr, drawn after half a second; silent otherwise."""

    def __init__(self, total: int, label: str, *, enabled: bool, stream: IO[str] | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.label, self.done = max(total, 1), label, 0
        self.start = self.last = time.perf_counter()
        self.drawn = False

    def step(self, what: str = "") -> None:
        self.done += 1
        now = time.perf_counter()
        if not self.enabled or now - self.start < 0.5 or now - self.last < 0.1:
            return
        self.last = now
        filled = int(24 * min(self.done / self.total, 1.0))
        text = f"\r[{'#' * filled}{'-' * (24 - filled)}] {self.done}/{self.total} {self.label}"
        self.stream.write(f"{text}  {what}"[:100].ljust(80))
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()


def _cmd_table(args: argparse.Namespace) -> int:
    from ._cli import _load_dirs
    from ._options import select_cases
    from ._tables import build_table, write_table

    _load_dirs(args.cases_dir)
    cases = select_cases(args.case, args.tag)
    total = sum(len(c.known) + args.points for c in cases)
    bar = _Bar(total, "points", enabled=not args.no_progress)
    try:
        table = build_table(
            cases,
            points=args.points,
            seed=args.seed,
            rational=args.rational,
            digits=args.digits,
            hessian=args.hessian,
            on_point=bar.step,
        )
    finally:
        bar.finish()
    text = write_table(table, args.output, args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        points = sum(len(c.points) for c in table.cases)
        print(
            f"verijac table: {len(table.cases)} case(s), {points} point(s), {args.digits} digits "
            f"-> {args.output} ({args.format})",
            file=sys.stderr,
        )
    return 0


def _cmd_regress(args: argparse.Namespace) -> int:
    from ._cli_check import _summary_table
    from ._options import load_dirs as _load_dirs
    from ._resolve import resolve_devices, resolve_dtypes, resolve_paths
    from ._table_regress import regress
    from ._tables import read_table

    _load_dirs(args.cases_dir)
    table = read_table(args.table)
    n_checks = (
        len(table.cases)
        * len(resolve_paths(args.path or None))
        * len(resolve_devices(args.device or None))
        * len(resolve_dtypes(args.dtype or None))
    )
    out = sys.stdout
    points = sum(len(c.points) for c in table.cases)
    print(
        f"verijac regress: {args.table} ({table.file_hash[:19]}…): {len(table.cases)} case(s), "
        f"{points} point(s), {n_checks} check(s)",
        file=out,
        flush=True,
    )
    bar = _Bar(n_checks, "checks", enabled=not (args.quiet or args.no_progress))

    def on_record(record: Record) -> None:
        bar.step(record.case)
        if record.failed:
            bar.finish()
            print("\n" + record.message(), file=out, flush=True)

    start = time.perf_counter()
    try:
        report = regress(
            table,
            paths=args.path or None,
            devices=args.device or None,
            dtypes=args.dtype or None,
            on_record=on_record,
        )
    finally:
        bar.finish()
    if not args.quiet and report.records:
        print(file=out)
        _summary_table(report.records, out)
    if args.json:
        report.write_json(args.json)
    counts = report.counts()
    parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    word = "PASSED" if report.passed else "FAILED"
    elapsed = time.perf_counter() - start
    print(
        f"verijac regress: {word}: {len(report.records)} checks ({parts or 'none ran'}) in "
        f"{elapsed:.1f}s",
        file=out,
        flush=True,
    )
    return 0 if report.passed else 1


__all__ = ["add_commands"]
