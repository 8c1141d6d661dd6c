"""The ``verijac`` command: list cases and paths, show a case, check autograd paths.

Exit status: 0 when every check passed (unsupported and skipped do not fail), 1 on a
mismatch or an error, 2 on a usage error (every `VerijacError` ends here as one line on
stderr), 3 on an `InternalError` (a bug in verijac, said so in one line on stderr), 130 when
interrupted (the completed records are still reported and written).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from ._errors import InternalError, UsageError, VerijacError
from ._options import PROFILE_NAMES, digits, jobs, positive_int, seconds, seed, select_cases
from ._report import STATUSES

if TYPE_CHECKING:
    from ._case import Case
    from ._report import Record, Report

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_REPORT = "; please report it with the command you ran"

#: Modules that add further sub-commands, each through ``add_commands(sub)`` (a sub-parser's
#: ``func`` default takes the parsed arguments and returns the exit status). They must import
#: cheaply: nothing heavy at module level.
_COMMAND_MODULES = ("._runs_cli", "._table_cli", "._bench_cli", "._conformance_cli")


class _Parser(argparse.ArgumentParser):
    """argparse, with errors as one line ``verijac: error: …`` and exit status 2."""

    #: sub-command name → its parser (set on the top-level parser by `build_parser`).
    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        print(f"verijac: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _add_cases_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cases-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="extra directory of cases (*.py modules defining CASES, *.toml files); repeatable",
    )


def _add_check_options(p: argparse.ArgumentParser, *, op: bool) -> None:
    sel = p.add_argument_group("selection")
    if op:
        sel.add_argument(
            "--case",
            required=True,
            metavar="NAME",
            help="the case whose exact derivatives the op must match",
        )
    else:
        sel.add_argument(
            "--case",
            action="append",
            default=[],
            metavar="NAME",
            help="case name or glob (seed_*); repeatable; default: every case",
        )
        sel.add_argument(
            "--tag",
            action="append",
            default=[],
            metavar="TAG",
            help="only cases with this tag; repeatable (all must match)",
        )
    sel.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="PATH",
        help="path name, glob (func.*) or family (reverse); '!PATTERN' excludes; repeatable; "
        "default: every path the command runs by default",
    )
    sel.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="DEVICE",
        help="cpu, cuda, cuda:1, mps; repeatable; default: every available device",
    )
    sel.add_argument(
        "--dtype",
        action="append",
        default=[],
        metavar="DTYPE",
        help="float64, float32, float16, bfloat16; repeatable; default: float64 and float32",
    )
    if op:
        sel.add_argument(
            "--require",
            action="append",
            default=[],
            metavar="CAP",
            help="capability whose absence is a failure: forward_ad, vmap, double_backward, compile",
        )
    search = p.add_argument_group("search")
    search.add_argument(
        "--seed", type=seed, help="seed for the points (default: random, printed first)"
    )
    search.add_argument(
        "--max-examples", type=positive_int, metavar="N", help="batches per case, device and dtype"
    )
    search.add_argument("--batch-size", type=positive_int, metavar="N", help="points per batch")
    search.add_argument(
        "--profile", choices=PROFILE_NAMES, help="ci (quick), dev (default) or thorough"
    )
    search.add_argument(
        "--time-budget",
        type=seconds,
        metavar="SECONDS",
        help="stop starting new batches after this long",
    )
    search.add_argument(
        "--tf32", action="store_true", help="allow TF32 matmuls on CUDA (off by default)"
    )
    if not op:
        search.add_argument(
            "--jobs",
            "-j",
            type=jobs,
            default="auto",
            metavar="N",
            help="worker processes checking cases side by side (default: auto, one per CPU "
            "up to 8; forked on Linux with CPU devices only, else 1); the report is the same",
        )
    search.add_argument(
        "--reference-digits",
        type=digits,
        metavar="N",
        help="evaluate the exact derivatives with mpmath at N digits (17-1000) and round "
        "once to float64, instead of the generated code in float64 (slower)",
    )
    runs = p.add_argument_group("runs")
    runs.add_argument(
        "--baseline",
        metavar="RUN.json",
        help="a run file: failures it already had are reported as `known`, only new ones fail",
    )
    runs.add_argument(
        "--update-baseline",
        action="store_true",
        help="write this run to the --baseline file afterwards (its failures become known)",
    )
    if not op:
        runs.add_argument(
            "--shard",
            metavar="K/N",
            help="check only the K-th of N deterministic slices of case × device × dtype "
            "(join the shards' --json files with `verijac merge`)",
        )
    out = p.add_argument_group("output")
    out.add_argument("--json", metavar="FILE", help="write the run file (JSON; see `verijac diff`)")
    out.add_argument("--junit", metavar="FILE", help="write the report as JUnit XML")
    out.add_argument("--quiet", "-q", action="store_true", help="only failures and the final line")
    out.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    _add_cases_dir(p)


def build_parser() -> _Parser:
    """The argument parser of the ``verijac`` command."""
    from . import __version__

    parser = _Parser(
        prog="verijac",
        description="Verify PyTorch autograd against exact SymPy derivatives.",
        epilog="Exit status: 0 all passed, 1 mismatch or error, 2 usage error, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"verijac {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("list", help="list cases (or, with --paths, the path catalogue)")
    p.add_argument("pattern", nargs="?", metavar="GLOB", help="case (or path) name glob")
    p.add_argument(
        "--tag", action="append", default=[], help="only cases with this tag; repeatable"
    )
    p.add_argument("--paths", action="store_true", help="list the autograd paths instead of cases")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    _add_cases_dir(p)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "show", help="show a case: inputs, domain, outputs, exact Jacobian, known points"
    )
    p.add_argument("case", metavar="CASE", help="case name")
    p.add_argument("--hessian", action="store_true", help="also show the exact Hessian")
    p.add_argument("--plain", action="store_true", help="SymPy str instead of pretty printing")
    _add_cases_dir(p)
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("check", help="check autograd paths against the exact derivatives")
    _add_check_options(p, op=False)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "functions", help="print the SymPy → torch function map as Markdown (docs/functions.md)"
    )
    p.set_defaults(func=_cmd_functions)

    p = sub.add_parser("check-op", help="check your own function (MODULE:ATTR) against a case")
    p.add_argument(
        "target", metavar="MODULE:ATTR", help="e.g. mypkg.ops:softplus (cwd is importable)"
    )
    _add_check_options(p, op=True)
    p.set_defaults(func=_cmd_check_op)
    for name in _COMMAND_MODULES:
        importlib.import_module(name, __package__).add_commands(sub)
    parser.commands = dict(sub.choices)
    return parser


class _Escaped:
    """A text stream that shows control characters as escapes (``\\x1b``), so that text from a
    case or an op (descriptions, names, exception messages) cannot move the cursor, clear the
    screen or fake a line. Newlines and tabs pass; the progress bar writes to `raw`."""

    def __init__(self, raw: IO[str]) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        return self.raw.write(escape_controls(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
for _keep in ("\n", "\t"):
    del _CONTROLS[ord(_keep)]


def escape_controls(text: str) -> str:
    """``text`` with control characters other than newline and tab written as ``\\xNN``."""
    return text.translate(_CONTROLS)


def main(argv: list[str] | None = None) -> int:
    """Run the ``verijac`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Escaped(out), _Escaped(err)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = out, err


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # name the sub-command in the error, so its --help is the one suggested
            sub = _subparser(parser, args.command)
            sub.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        names = ", ".join(getattr(parser, "commands", {}))
        print(f"verijac: error: choose a command: {names}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except InternalError as exc:  # verijac's fault: never reported as a usage error
        print(f"verijac: {InternalError.PREFIX}{exc.detail}{_REPORT}", file=sys.stderr)
        return EXIT_INTERNAL
    except VerijacError as exc:
        print(f"verijac: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("verijac: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `verijac list | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser:
    commands: dict[str, argparse.ArgumentParser] = getattr(parser, "commands", {})
    return commands.get(command or "", parser)


# -- cases directories ----------------------------------------------------------------------


def _load_dirs(dirs: Iterable[str]) -> None:
    """Load extra cases directories; any failure becomes a one-line `UsageError`."""
    from ._registry import load_cases

    for d in dirs:
        path = Path(d)
        if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
            raise UsageError(f"cases directory {d!r} is not readable (check its permissions)")
        load_cases(path)


# -- list and show --------------------------------------------------------------------------


def _shape_text(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def _inputs_text(case: Case) -> str:
    return ", ".join(
        f"{v.name}[{','.join(map(str, v.shape))}]" if v.shape else v.name for v in case.variables
    )


def _outputs_text(case: Case) -> str:
    shapes = [_shape_text(o.shape) for o in case.outputs]
    return f"({', '.join(shapes)})" if case.tuple_outputs else shapes[0]


def _case_info(case: Case) -> dict[str, Any]:
    from ._registry import case_source

    return {
        "name": case.name,
        "description": case.description,
        "tags": sorted(case.tags),
        "inputs": [
            {"name": v.name, "shape": list(v.shape), "domain": str(v.domain)}
            for v in case.variables
        ],
        "outputs": [{"shape": list(o.shape)} for o in case.outputs],
        "tuple_outputs": case.tuple_outputs,
        "source": case_source(case.name),
    }


def _path_info(path: Any) -> dict[str, Any]:
    return {
        "name": path.name,
        "family": path.family,
        "computes": path.computes,
        "requires": sorted(path.requires),
        "uses": sorted(path.uses),
        "call": path.call,
        "opt_in": path.opt_in,
        "batched": path.batched,
        "description": path.description,
    }


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], out: IO[str]) -> None:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=False)] + [str(row[-1])]
        print("  ".join(cells).rstrip(), file=out)


def _cmd_list(args: argparse.Namespace) -> int:
    _load_dirs(args.cases_dir)
    if args.paths:
        return _list_paths(args)
    from ._registry import list_cases

    cases = list_cases(args.pattern, tag=args.tag)
    if args.json:
        print(json.dumps([_case_info(c) for c in cases], indent=2))
        return EXIT_OK
    if not cases:
        print("no case matches", file=sys.stderr)
        return EXIT_OK
    rows = [
        (c.name, _inputs_text(c), _outputs_text(c), ",".join(sorted(c.tags)), c.description)
        for c in cases
    ]
    _table(("NAME", "INPUTS", "OUTPUTS", "TAGS", "DESCRIPTION"), rows, sys.stdout)
    return EXIT_OK


def _list_paths(args: argparse.Namespace) -> int:
    from .paths._base import FAMILIES, list_paths

    if args.tag:
        raise UsageError("--tag selects cases; with --paths give a name glob or a family instead")
    pattern = args.pattern
    paths = list_paths(family=pattern) if pattern in FAMILIES else list_paths(pattern)
    if args.json:
        print(json.dumps([_path_info(p) for p in paths], indent=2))
        return EXIT_OK
    if not paths:
        print("no path matches", file=sys.stderr)
        return EXIT_OK
    rows = [
        (
            p.name + (" (opt-in)" if p.opt_in else ""),
            p.family,
            p.computes,
            ",".join(sorted(p.requires)) or "-",
            ",".join(sorted(p.uses)) or "-",
            p.call,
        )
        for p in paths
    ]
    _table(("NAME", "FAMILY", "COMPUTES", "REQUIRES", "USES", "CALL"), rows, sys.stdout)
    return EXIT_OK


def _pretty(expr: Any, plain: bool) -> str:
    import sympy

    if plain:
        return str(expr)
    unicode = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "") == "utf8"
    return sympy.pretty(expr, use_unicode=unicode)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _cmd_functions(args: argparse.Namespace) -> int:
    from ._functions import coverage_markdown

    sys.stdout.write(coverage_markdown())
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from ._registry import case_source, get_case

    _load_dirs(args.cases_dir)
    case = get_case(args.case)
    out = sys.stdout
    print(f"{case.name}: {case.description}" if case.description else case.name, file=out)
    print(f"  source: {case_source(case.name)}", file=out)
    print(f"  tags: {', '.join(sorted(case.tags)) or '-'}", file=out)
    print("inputs:", file=out)
    _table(
        ("  NAME", "SHAPE", "DOMAIN"),
        [(f"  {v.name}", _shape_text(v.shape), str(v.domain)) for v in case.variables],
        out,
    )
    if case.exclude:
        print(f"excluded (|expr| < {case.margin:g}): {', '.join(map(str, case.exclude))}", file=out)
    print("outputs:", file=out)
    func = case.function()
    outs = func if case.tuple_outputs else (func,)
    for k, (o, expr) in enumerate(zip(case.outputs, outs, strict=True)):
        label = f"  [{k}] " if case.tuple_outputs else "  "
        print(f"{label}{_shape_text(o.shape)}:", file=out)
        print(_indent(_pretty(expr, args.plain)), file=out)
    if case.tolerances:
        print(f"tolerances: {case.tolerances}", file=out)
    print("jacobian (exact; nested like torch.autograd.functional.jacobian):", file=out)
    _blocks(case, case.jacobian(), args.plain, out)
    if args.hessian:
        print("hessian (exact; see verijac.Case.hessian for the nesting):", file=out)
        print(_indent(_pretty(case.hessian(), args.plain)), file=out)
    if case.known:
        print("known points:", file=out)
        for point in case.known:
            at = ", ".join(f"{k}={v!r}" for k, v in point.at.items())
            print(f"  at {at}" + (f"  ({point.note})" if point.note else ""), file=out)
            for what in ("value", "jacobian", "hessian"):
                value = getattr(point, what)
                if value is not None:
                    print(f"    {what}: {value!r}", file=out)
            for cot, res in point.vjp:
                print(f"    vjp with {cot!r}: {res!r}", file=out)
    return EXIT_OK


def _blocks(case: Case, jac: Any, plain: bool, out: IO[str]) -> None:
    """Print a Jacobian block by block: ``∂out[k]/∂input``."""
    names = case.input_names
    rows = jac if case.tuple_outputs else (jac,)
    for k, row in enumerate(rows):
        blocks = row if case.tuple_inputs else (row,)
        for name, block in zip(names, blocks, strict=True):
            label = f"out[{k}]" if case.tuple_outputs else "out"
            text = _pretty(block, plain)
            if "\n" in text:
                print(f"  d {label} / d {name} =", file=out)
                print(_indent(text), file=out)
            else:
                print(f"  d {label} / d {name} = {text}", file=out)


# -- check ----------------------------------------------------------------------------------


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
    print(
        f"verijac {label}: seed={seed}, {n_cases} case(s), {total} check(s){reference}",
        file=out,
        flush=True,
    )
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


__all__ = ["build_parser", "main"]
