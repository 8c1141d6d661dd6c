"""The ``verijac conformance`` sub-command: run files in, the conformance table out."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any


def add_commands(sub: Any) -> None:
    """Add this module's sub-parsers to ``sub`` (an argparse sub-parsers action)."""
    p = sub.add_parser(
        "conformance",
        help="write the conformance table (op × path family × dtype, a column per torch "
        "version) from run files",
        description="Aggregate run files written by `verijac check --json RUN.json` into the "
        "conformance table: one row per case, path family, dtype (and device when several were "
        "measured), one column per run (label: its torch version), each cell the worst status, "
        "the count per status, the worst ULP error and links to the known torch defects that "
        "explain its failures.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN.json", help="run files, one column each")
    p.add_argument(
        "--output", "-o", metavar="FILE", help="write the Markdown page here (default: stdout)"
    )
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    p.add_argument(
        "--family",
        action="append",
        default=[],
        metavar="FAMILY",
        help="only this path family (repeatable; default: all)",
    )
    p.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="TEXT",
        help="a Markdown paragraph for the page, e.g. how the runs were made (repeatable)",
    )
    p.add_argument(
        "--defects-page",
        default="torch-defects.md",
        metavar="URL",
        help="where defect links point (default: torch-defects.md, beside the page)",
    )
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Load the run files, build the table, write the page (and JSON). Returns the exit status:
    0 written, 2 a run file or output could not be read or written."""
    from ._conformance import build_table
    from ._errors import UsageError
    from ._report import write_text_atomic
    from ._runfile import load_run

    try:
        reports = [load_run(path) for path in args.runs]
        table = build_table(reports, sources=list(args.runs), families=args.family)
        command = "verijac conformance " + " ".join(shlex.quote(r) for r in args.runs)
        if args.output:
            command += f" --output {shlex.quote(args.output)}"
        page = table.markdown(defects_page=args.defects_page, command=command, notes=args.note)
        if args.output:
            write_text_atomic(args.output, page)
        else:
            sys.stdout.write(page)
        if args.json:
            write_text_atomic(args.json, table.to_json() + "\n")
    except UsageError as exc:
        print(f"verijac conformance: error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        n_bad = len(table.unexplained())
        print(
            f"verijac conformance: wrote {args.output}: {len(table.rows)} rows × "
            f"{len(table.runs)} run(s), {n_bad} unexplained failure cell(s)",
            file=sys.stderr,
        )
    return 0


__all__ = ["add_commands", "handler"]
