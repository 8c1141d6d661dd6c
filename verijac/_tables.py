"""Reference tables: exact values of f, J and H at points, as canonical JSON, read back safely.

A table is built once (`build_table`), written as canonical JSON (`Table.to_json`: the same
inputs give the same bytes) and read back by `read_table`, which never executes anything:
the JSON is validated field by field, the expressions are read with the safe parser and
checked against their hash, and every point against its checksum. A problem is one
`TableError` naming the file, the case, the point and the entry.

The layout is flat, like the paths' results: ``f`` has the ``m`` output elements, ``J`` is
``m × n`` and ``H`` is ``m × n × n`` over the flattened outputs and inputs, row-major.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from ._errors import TableError, UsageError

if TYPE_CHECKING:
    from ._case import Case
    from ._table_eval import Entry, Point

#: What the ``schema`` field of every table says.
SCHEMA = "verijac-reference-table"
#: The table layout this verijac writes and reads.
SCHEMA_VERSION = 1
#: The columns of every entry, in order.
COLUMNS = ("exact", "decimal", "float64", "float64_hex", "float32", "float32_hex")
DEFAULT_DIGITS = 30


@dataclass
class CaseTable:
    """One case of a table: its definition, its hash, and the entries at each point."""

    name: str
    description: str
    definition: dict[str, Any]
    quantities: dict[str, tuple[int, ...]]
    points: list[Point] = field(default_factory=list)
    values: list[dict[str, list[Entry]]] = field(default_factory=list)

    @property
    def hash(self) -> str:
        return definition_hash(self.name, self.definition)


@dataclass
class Table:
    """A reference table: metadata and one `CaseTable` per case."""

    metadata: dict[str, Any]
    cases: list[CaseTable]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema, version, metadata, cases)."""
        from ._table_eval import coordinate_text

        cases = []
        for c in self.cases:
            points = []
            for point, values in zip(c.points, c.values, strict=True):
                item: dict[str, Any] = {
                    "id": point.id,
                    "source": point.source,
                    "at": {
                        v["name"]: _nest([coordinate_text(x) for x in point.coords[v["name"]]], v)
                        for v in c.definition["inputs"]
                    },
                }
                for name, shape in c.quantities.items():
                    item[name] = [
                        {"index": list(index), **entry.columns()}
                        for index, entry in zip(_indices(shape), values[name], strict=True)
                    ]
                item["checksum"] = point_checksum(item)
                points.append(item)
            cases.append(
                {
                    "name": c.name,
                    "description": c.description,
                    "definition": c.definition,
                    "hash": c.hash,
                    "quantities": {k: list(v) for k, v in c.quantities.items()},
                    "points": points,
                }
            )
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "metadata": self.metadata,
            "columns": list(COLUMNS),
            "cases": cases,
        }

    def to_json(self) -> str:
        """Canonical JSON: fixed key order, one line per entry, a final newline."""
        return _dump(self.to_dict(), 0) + "\n"


def _nest(flat: list[str], variable: dict[str, Any]) -> Any:
    """Row-major elements nested in the input's shape (a scalar stays one value)."""
    shape = variable["shape"]
    if not shape:
        return flat[0]
    out: Any = flat
    for s in reversed(shape[1:]):
        out = [out[k : k + s] for k in range(0, len(out), s)]
    return out


def _indices(shape: Sequence[int]) -> list[tuple[int, ...]]:
    idx: list[tuple[int, ...]] = [()]
    for s in shape:
        idx = [(*i, k) for i in idx for k in range(s)]
    return idx


def _dump(obj: Any, depth: int) -> str:
    """JSON with two-space indentation; an entry, and a short object or list of plain values,
    stays on one line."""
    if isinstance(obj, dict) and "decimal" in obj:
        return _entry_json(obj)
    if isinstance(obj, dict | list) and obj:
        if not _holds_object(obj):
            flat = json.dumps(obj, ensure_ascii=False, allow_nan=False)
            numbers = isinstance(obj, list) and not any(isinstance(x, str | list) for x in obj)
            if len(flat) <= 100 or numbers:
                return flat
        pad, inner = "  " * depth, "  " * (depth + 1)
        if isinstance(obj, dict):
            items = [f"{inner}{json.dumps(k)}: {_dump(v, depth + 1)}" for k, v in obj.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        items = [f"{inner}{_dump(x, depth + 1)}" for x in obj]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def _entry_json(entry: dict[str, Any]) -> str:
    """An entry on one line (its text fields are digits, signs, ``/``, ``.``, ``e``, ``x``)."""
    parts = []
    for key, value in entry.items():
        if value is None:
            text = "null"
        elif isinstance(value, list):
            text = "[" + ", ".join(map(str, value)) + "]"
        else:
            text = f'"{value}"'
        parts.append(f'"{key}": {text}')
    return "{" + ", ".join(parts) + "}"


def _holds_object(obj: Any) -> bool:
    """Whether a dict is anywhere inside ``obj``."""
    values = obj.values() if isinstance(obj, dict) else obj
    return any(isinstance(v, dict) or (isinstance(v, list) and _holds_object(v)) for v in values)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def definition_hash(name: str, definition: dict[str, Any]) -> str:
    """``sha256:…`` of a case's name and definition (inputs, domains, output expressions)."""
    return "sha256:" + hashlib.sha256(_canonical({"name": name, **definition})).hexdigest()


def point_checksum(point: dict[str, Any]) -> str:
    """``sha256:…`` of a point's coordinates and entries (every field but the checksum)."""
    body = {k: v for k, v in point.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(_canonical(body)).hexdigest()


def expression_text(expr: Any) -> str:
    """An expression as text the safe parser reads back (floats with every digit)."""
    from sympy.printing.str import StrPrinter

    class _Printer(StrPrinter):
        def _print_Float(self, expr: Any) -> str:
            if expr._prec == 53:
                return repr(float(expr))
            return str(super()._print_Float(expr))

    return str(_Printer().doprint(expr))


def case_definition(case: Case) -> dict[str, Any]:
    """The part of a case a table records and hashes: inputs with domains, outputs."""
    inputs = []
    for v in case.variables:
        d = v.domain
        inputs.append(
            {
                "name": v.name,
                "shape": [int(s) for s in v.shape],
                "domain": {
                    "lo": repr(d.lo),
                    "hi": repr(d.hi),
                    "left_open": d.left_open,
                    "right_open": d.right_open,
                    "exclude": [repr(p) for p in d.exclude],
                },
            }
        )
    outputs = [
        {"shape": [int(s) for s in o.shape], "exprs": [expression_text(e) for e in o.exprs]}
        for o in case.outputs
    ]
    return {"inputs": inputs, "outputs": outputs, "tuple_outputs": case.tuple_outputs}


def versions() -> dict[str, str]:
    """The versions a table records: verijac, SymPy and mpmath."""
    import mpmath
    import sympy

    from . import __version__

    return {"verijac": __version__, "sympy": sympy.__version__, "mpmath": mpmath.__version__}


def build_table(
    cases: Sequence[Case],
    *,
    points: int = 0,
    seed: int = 0,
    rational: bool = False,
    digits: int = DEFAULT_DIGITS,
    hessian: bool = False,
    known: bool = True,
    on_point: Callable[[str], None] | None = None,
) -> Table:
    """A reference table of ``cases`` at their known points and ``points`` generated ones.

    Args:
        cases: the cases, in the order the table lists them.
        points: generated points per case, drawn reproducibly from ``seed``.
        seed: the seed of the generated points.
        rational: generated points on the dyadic grid 1/16 (short exact values) instead of
            random float32 numbers.
        digits: significant digits of the decimal column (17 to 1000).
        hessian: the Hessian for every case (it is always there for one scalar output).
        known: include the cases' known points.
        on_point: called with the case name after each point.

    Returns:
        The `Table`.

    Raises:
        UsageError: an option is out of range.
        TableError: a known point where an entry is not finite, or too few valid points.
    """
    from ._precise import MAX_DIGITS, MIN_DIGITS
    from ._table_eval import CaseTerms, generated_points, known_points

    for name, value, low in (("points", points, 0), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UsageError(f"{name} must be an int >= {low}, got {name}={value!r}")
    if (
        isinstance(digits, bool)
        or not isinstance(digits, int)
        or not (MIN_DIGITS <= digits <= MAX_DIGITS)
    ):
        raise UsageError(f"digits must be an int from {MIN_DIGITS} to {MAX_DIGITS}, got {digits!r}")
    out = []
    for case in cases:
        terms = CaseTerms(case, hessian or case.scalar_output)
        table = CaseTable(
            case.name, case.description, case_definition(case), dict(terms.quantities)
        )
        found: list[tuple[Point, list[Entry]]] = []
        for point in known_points(case) if known else []:
            entries = terms.evaluate(point, digits)
            if isinstance(entries, str):
                raise TableError(f"case {case.name!r}, point {point.id!r}: {entries}")
            found.append((point, entries))
            if on_point is not None:
                on_point(case.name)
        found += generated_points(
            terms,
            count=points,
            seed=seed,
            rational=rational,
            digits=digits,
            on_point=None if on_point is None else functools.partial(on_point, case.name),
        )
        for point, entries in found:
            table.points.append(point)
            table.values.append(_split(entries, terms.quantities))
        out.append(table)
    metadata: dict[str, Any] = {
        **versions(),
        "digits": digits,
        "seed": seed,
        "generated_points": points,
        "rational": rational,
        "hessian": hessian,
    }
    return Table(metadata, out)


def _split(entries: list[Entry], quantities: dict[str, tuple[int, ...]]) -> dict[str, list[Entry]]:
    out, pos = {}, 0
    for name, shape in quantities.items():
        size = len(_indices(shape))
        out[name] = entries[pos : pos + size]
        pos += size
    return out


def write_table(table: Table, path: str | os.PathLike[str] | None, fmt: str = "json") -> str:
    """Render ``table`` as ``fmt`` (json, csv, md, latex) and write it atomically to ``path``
    (nothing written when ``path`` is ``None``); returns the text.

    Raises:
        UsageError: an unknown format, or the file cannot be written.
    """
    from ._report import write_text_atomic
    from ._table_format import render

    text = table.to_json() if fmt == "json" else render(table, fmt)
    if path is not None:
        write_text_atomic(path, text)
    return text


def file_hash(path: str | os.PathLike[str]) -> str:
    """``sha256:…`` of a file's bytes."""
    with open(path, "rb") as fh:
        return "sha256:" + hashlib.sha256(fh.read()).hexdigest()


def read_table(path: str | os.PathLike[str]) -> LoadedTable:
    """Read and validate a table written by `build_table` (JSON only; nothing is executed).

    Raises:
        TableError: the file is missing, truncated, malformed or edited; the message names
            the file, case, point and entry.
    """
    from ._table_load import load

    return load(path)


@dataclass
class LoadedEntry:
    """One entry read back: the exact value (if any), the decimal, the float64 and float32."""

    exact: Fraction | None
    decimal: Fraction
    float64: float
    float32: float


@dataclass
class LoadedCase:
    """A case read back from a table."""

    name: str
    definition: dict[str, Any]
    hash: str
    quantities: dict[str, tuple[int, ...]]
    points: list[Point]
    values: list[dict[str, list[LoadedEntry]]]


@dataclass
class LoadedTable:
    """A validated table: its metadata and cases, and the file's own hash."""

    path: str
    file_hash: str
    metadata: dict[str, Any]
    cases: list[LoadedCase]


__all__ = [
    "COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "CaseTable",
    "LoadedCase",
    "LoadedEntry",
    "LoadedTable",
    "Table",
    "build_table",
    "case_definition",
    "definition_hash",
    "read_table",
    "write_table",
]
