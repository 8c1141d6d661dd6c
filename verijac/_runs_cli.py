"""The ``verijac diff``, ``merge`` and ``defects`` sub-commands: runs compared, shards joined,
known torch defects listed."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._errors import UsageError


def add_commands(sub: Any) -> None:
    """Add ``diff``, ``merge`` and ``defects`` to the sub-parsers action ``sub``."""
    p = sub.add_parser(
        "diff",
        help="compare two run files: regressed, fixed, error grew/shrank, new, removed",
        description="Compare two run files (`verijac check --json RUN.json`) case × path × "
        "device × dtype. Exit status 1 when anything regressed.",
    )
    p.add_argument("before", metavar="A.json", help="the earlier run (e.g. the last release)")
    p.add_argument("after", metavar="B.json", help="the later run")
    p.add_argument(
        "--factor",
        type=_factor,
        default=None,
        metavar="X",
        help="report worst ULP errors that grew or shrank by this factor (default 10)",
    )
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", metavar="FILE", help="write the diff as JSON ('-': stdout)")
    form.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser(
        "merge",
        help="join the run files of shards (`check --shard K/N`) into one",
        description="Join shards of one run; refuses runs with different seeds, settings, "
        "torch versions or case definitions, and overlapping shards.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN.json", help="the shards' run files")
    p.add_argument("--json", required=True, metavar="OUT", help="the merged run file")
    p.set_defaults(func=_cmd_merge)

    p = sub.add_parser(
        "defects",
        help="list the known torch defects (the registry behind xfail records)",
    )
    p.add_argument("--markdown", action="store_true", help="print docs/torch-defects.md")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="also load this TOML file of [[defect]] entries; repeatable",
    )
    p.add_argument(
        "--audit",
        nargs="+",
        metavar="RUN.json",
        help="list, per entry, the paths and cases it covered in these runs where the defect "
        "never showed (all xpass): candidates for narrowing it",
    )
    p.set_defaults(func=_cmd_defects)


def _factor(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 1, got {text!r}") from None
    if not value > 1 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 1, got {text!r}")
    return value


def _cmd_diff(args: argparse.Namespace) -> int:
    from ._diff import DEFAULT_FACTOR, diff_runs
    from ._report import write_text_atomic
    from ._runfile import load_run

    a, b = load_run(args.before), load_run(args.after)
    result = diff_runs(a, b, factor=args.factor or DEFAULT_FACTOR)
    if args.json == "-":
        print(result.to_json())
    elif args.json:
        write_text_atomic(args.json, result.to_json() + "\n")
        print(result.table())
    else:
        print(result.table(markdown=args.markdown))
    return 1 if result.regressed else 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from ._runfile import load_run, merge_runs

    if not args.json.strip():
        raise UsageError("--json needs a file name")
    merged = merge_runs([load_run(r) for r in args.runs], sources=args.runs)
    merged.write_json(args.json)
    counts = ", ".join(f"{n} {s}" for s, n in merged.counts().items() if n)
    print(
        f"verijac merge: {len(args.runs)} run(s), {len(merged.records)} records ({counts}) → {args.json}"
    )
    return 0 if merged.passed else 1


def _cmd_defects(args: argparse.Namespace) -> int:
    from ._defects import list_defects, load_defect_file, markdown

    for f in args.file:
        load_defect_file(f)
    defects = list_defects()
    if args.audit:
        from ._defect_audit import audit
        from ._runfile import load_run

        found = audit([load_run(r) for r in args.audit])
        for item in found:
            print(item.line())
        print(
            f"verijac defects --audit: {len(args.audit)} run(s), "
            f"{len({u.entry for u in found})} entr(ies) with parts that never showed"
        )
    elif args.markdown:
        sys.stdout.write(markdown(defects))
    elif args.json:
        rows = [
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(d).items()}
            for d in defects
        ]
        print(json.dumps(rows, indent=2))
    else:
        import torch

        width = max((len(d.id) for d in defects), default=2)
        print(f"{'ID':<{width}}  {'TORCH':<14}  APPLIES NOW  SUMMARY")
        for d in defects:
            now = "yes" if d.applies_to_version(str(torch.__version__)) else "no"
            print(f"{d.id:<{width}}  {d.torch:<14}  {now:<11}  {d.summary}")
    return 0


__all__ = ["add_commands"]
