"""The ``verijac`` command: list cases and paths, show a case, check autograd paths.

Exit status: 0 when every check passed (unsupported and skipped do not fail), 1 on a
mismatch or an error, 2 on a usage error (every `VerijacError` ends here as one line on
stderr), 3 on an `InternalError` (a bug in verijac, said so in one line on stderr), 130 when
interrupted (the completed records are still reported and written).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import IO, TYPE_CHECKING, Any, NoReturn

from ._cli_check import _cmd_check, _cmd_check_op
from ._cli_info import _cmd_functions, _cmd_list, _cmd_show
from ._errors import InternalError, VerijacError
from ._options import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    PROFILE_NAMES,
    digits,
    jobs,
    load_dirs,
    positive_int,
    seconds,
    seed,
)

if TYPE_CHECKING:
    pass

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


def prefer_huge_pages() -> None:
    """Let torch's CPU allocator back large tensors with transparent huge pages (2 MiB)
    in this process, unless the environment already says (``THP_MEM_ALLOC_ENABLE``).

    A check allocates and frees references of up to ~100 MB per chunk; each fresh 4 KiB
    page costs the kernel a fault. Measured on a ``ci`` run: 4.2M page faults and 11 s of
    system time with 4 KiB pages, 0.6M and 6 s with huge pages, the same peak memory. torch
    reads the variable once, so this only acts before torch is imported (the command, not
    a library call); values and code paths are unchanged (those tensors are page-aligned,
    a multiple of the usual 64 bytes). Only where the kernel has transparent huge pages
    (`THP_SETTINGS` exists): elsewhere torch's ``madvise`` would fail and warn.
    """
    if "torch" not in sys.modules and os.path.exists(THP_SETTINGS):
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


#: The kernel's transparent-huge-page setting; absent where the kernel has none.
THP_SETTINGS = "/sys/kernel/mm/transparent_hugepage/enabled"


def escape_controls(text: str) -> str:
    """``text`` with control characters other than newline and tab written as ``\\xNN``."""
    return text.translate(_CONTROLS)


def main(argv: list[str] | None = None) -> int:
    """Run the ``verijac`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    prefer_huge_pages()
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


#: The name the sibling command modules (tables, bench) import.
_load_dirs = load_dirs
