"""A reference table as CSV (long form), Markdown and LaTeX (for docs and papers).

CSV has one row per entry, with the point's coordinates as rows of quantity ``x``, so the
file stands on its own. Markdown and LaTeX show each point on one row: exact values exactly
(``48``, ``-7/3``), other values as their correctly rounded float64; the full decimals and
bit patterns of inexact entries follow in a second Markdown table.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ._errors import UsageError

if TYPE_CHECKING:
    from ._table_eval import Entry, Point
    from ._tables import CaseTable, Table

FORMATS = ("json", "csv", "md", "latex")
#: Longest exact value Markdown and LaTeX print in place; longer ones show the float64.
SHORT_EXACT = 24
_CSV_HEADER = (
    *("case", "point", "quantity", "index"),
    *("exact", "decimal", "float64", "float64_hex", "float32", "float32_hex"),
)


def render(table: Table, fmt: str) -> str:
    """``table`` as ``csv``, ``md`` or ``latex`` text (``json``: `Table.to_json`).

    Raises:
        UsageError: an unknown format.
    """
    if fmt == "json":
        return table.to_json()
    renderers: dict[str, Callable[[Table], str]] = {
        "csv": to_csv,
        "md": to_markdown,
        "latex": to_latex,
    }
    if fmt not in renderers:
        raise UsageError(f"format must be one of {FORMATS}, got {fmt!r}")
    return renderers[fmt](table)


def _index_text(index: Sequence[int]) -> str:
    return ",".join(map(str, index))


def _coordinate_entries(point: Point, digits: int) -> list[tuple[str, Entry]]:
    """The point's coordinates as entries (exact where the coordinate is rational)."""
    from ._table_eval import entry_from

    out = []
    for k, c in enumerate(point.flat()):
        if isinstance(c, Fraction):
            out.append((str(k), entry_from(c, digits, exact=True)))
            continue
        import sympy

        approx = sympy.Rational(sympy.sympify(c).evalf(digits + 20))
        entry = entry_from(Fraction(int(approx.p), int(approx.q)), digits, exact=False)
        out.append((str(k), entry))
    return out


def to_csv(table: Table) -> str:
    """Long form: case, point, quantity, index, and the six columns of every entry."""
    from ._tables import _indices

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_CSV_HEADER)
    digits = int(table.metadata["digits"])
    for c in table.cases:
        for point, values in zip(c.points, c.values, strict=True):
            for index, entry in _coordinate_entries(point, digits):
                writer.writerow([c.name, point.id, "x", index, *_cells(entry)])
            for name, shape in c.quantities.items():
                for idx, entry in zip(_indices(shape), values[name], strict=True):
                    writer.writerow([c.name, point.id, name, _index_text(idx), *_cells(entry)])
    return buf.getvalue()


def _cells(entry: Entry) -> list[str]:
    return ["" if v is None else v for v in entry.columns().values()]


def _short(entry: Entry) -> str:
    """Exact text when exact and short, else the float64 (shortest repr)."""
    if entry.exact is not None and len(entry.exact) <= SHORT_EXACT:
        return entry.exact
    return entry.columns()["float64"] or ""


def _nested(values: list[str], shape: tuple[int, ...], open_: str, close: str, sep: str) -> str:
    """Row-major values nested in ``shape``; a leading dimension of 1 is dropped."""
    if len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 1 and shape[0] == 1:
        return values[0]

    def nest(vals: list[str], dims: tuple[int, ...]) -> str:
        if len(dims) == 1:
            return open_ + sep.join(vals) + close
        step = len(vals) // dims[0]
        parts = [nest(vals[k : k + step], dims[1:]) for k in range(0, len(vals), step)]
        return open_ + sep.join(parts) + close

    return nest(values, shape)


def _at_text(case: CaseTable, point: Point) -> str:
    from ._table_eval import coordinate_text
    from ._tables import _nest

    parts = []
    for v in case.definition["inputs"]:
        value = _nest([coordinate_text(x) for x in point.coords[v["name"]]], v)
        parts.append(f"{v['name']} = {_plain(value)}")
    return ", ".join(parts)


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return str(value)


def _header(table: Table) -> str:
    meta = table.metadata
    extra = f"{meta['generated_points']} generated point(s) per case" + (
        " on the grid 1/16" if meta["rational"] else ""
    )
    return (
        f"verijac {meta['verijac']} (SymPy {meta['sympy']}, mpmath {meta['mpmath']}); "
        f"{meta['digits']} significant digits; seed {meta['seed']}; {extra}."
    )


def to_markdown(table: Table) -> str:
    """One section per case: its definition, a row per point, then the decimals of the
    entries that are not shown exactly."""
    lines = ["# verijac reference table", "", _header(table), ""]
    lines += [
        "Exact values are printed exactly (`48`, `-7/3`); other values as their correctly "
        "rounded float64. `J` is m×n and `H` m×n×n over the flattened outputs and inputs.",
        "",
    ]
    for c in table.cases:
        lines += [f"## {c.name}", ""]
        if c.description:
            lines += [c.description, ""]
        inputs = ", ".join(
            f"`{v['name']}`" + (f" ({'×'.join(map(str, v['shape']))})" if v["shape"] else "")
            for v in c.definition["inputs"]
        )
        outputs = ", ".join(f"`{e}`" for o in c.definition["outputs"] for e in o["exprs"])
        lines += [f"- inputs: {inputs}", f"- outputs: {outputs}", f"- hash: `{c.hash}`", ""]
        names = list(c.quantities)
        lines.append("| point | at | " + " | ".join(names) + " |")
        lines.append("| --- | --- | " + " | ".join("---" for _ in names) + " |")
        details = []
        for point, values in zip(c.points, c.values, strict=True):
            cells = [
                _nested([_short(e) for e in values[q]], c.quantities[q], "(", ")", ", ")
                for q in names
            ]
            lines.append(f"| {point.id} | {_at_text(c, point)} | " + " | ".join(cells) + " |")
            details += _details(point, values, c.quantities)
        lines.append("")
        if details:
            lines += [
                "| point | entry | decimal | float64 | float32 |",
                "| --- | --- | --- | --- | --- |",
                *details,
                "",
            ]
    return "\n".join(lines)


def _details(
    point: Point, values: dict[str, list[Entry]], quantities: dict[str, tuple[int, ...]]
) -> list[str]:
    from ._tables import _indices

    rows = []
    for name, shape in quantities.items():
        for idx, entry in zip(_indices(shape), values[name], strict=True):
            if entry.exact is not None and len(entry.exact) <= SHORT_EXACT:
                continue
            col = entry.columns()
            rows.append(
                f"| {point.id} | {name}[{_index_text(idx)}] | {entry.decimal} | "
                f"`{col['float64_hex']}` | `{col['float32_hex']}` |"
            )
    return rows


_FLOAT = re.compile(r"(-?)([\d.]+)e([-+]\d+)")


def _latex_number(text: str) -> str:
    if "/" in text:
        num, den = text.split("/")
        sign = "-" if num.startswith("-") else ""
        return f"{sign}\\frac{{{num.lstrip('-')}}}{{{den}}}"
    m = _FLOAT.fullmatch(text)
    if m:
        return f"{m[1]}{m[2]}\\times 10^{{{int(m[3])}}}"
    if text in ("inf", "-inf"):
        return text.replace("inf", "\\infty")
    return text


def _latex_escape(text: str) -> str:
    return re.sub(r"([_&%#$])", r"\\\1", text)


def _latex_value(values: list[str], shape: tuple[int, ...]) -> str:
    """A vector as a row ``(a, b)``, a matrix as a pmatrix, higher ranks as a tuple of them."""
    if len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 1:
        return values[0] if shape[0] == 1 else "(" + ",\\ ".join(values) + ")"
    if len(shape) == 2:
        rows = [values[k : k + shape[1]] for k in range(0, len(values), shape[1])]
        body = " \\\\ ".join(" & ".join(r) for r in rows)
        return "\\begin{pmatrix} " + body + " \\end{pmatrix}"
    step = len(values) // shape[0]
    parts = [_latex_value(values[k : k + step], shape[1:]) for k in range(0, len(values), step)]
    return "\\left(" + ",\\ ".join(parts) + "\\right)"


def to_latex(table: Table) -> str:
    """A LaTeX fragment: one ``tabular`` per case (no packages beyond ``amsmath``)."""
    lines = [
        "% verijac reference table: " + _header(table),
        "% Exact values exactly; others as their correctly rounded float64.",
    ]
    for c in table.cases:
        names = list(c.quantities)
        lines += ["", f"\\subsection*{{{_latex_escape(c.name)}}}"]
        if c.description:
            lines.append(_latex_escape(c.description) + "\n")
        lines += [
            "\\begin{tabular}{l" + "l" * (1 + len(names)) + "}",
            "\\hline",
            "point & at & " + " & ".join(f"${q}$" for q in names) + " \\\\",
            "\\hline",
        ]
        for point, values in zip(c.points, c.values, strict=True):
            cells = [
                "$"
                + _latex_value([_latex_number(_short(e)) for e in values[q]], c.quantities[q])
                + "$"
                for q in names
            ]
            at = _latex_escape(_at_text(c, point))
            lines.append(f"{_latex_escape(point.id)} & {at} & " + " & ".join(cells) + " \\\\")
        lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


__all__ = ["FORMATS", "render", "to_csv", "to_latex", "to_markdown"]
