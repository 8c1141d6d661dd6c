"""``verijac list``, ``verijac show`` and ``verijac functions``: what the registry holds."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from ._errors import UsageError
from ._options import EXIT_OK
from ._options import load_dirs as _load_dirs

if TYPE_CHECKING:
    from ._case import Case


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
