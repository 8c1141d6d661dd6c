"""Reading a reference table back: JSON only, validated field by field, nothing executed.

The checks run from the outside in, so the first problem found is the one reported: the
file and its JSON, the schema and its version, the metadata, each case (its definition read
with the safe parser and checked against its hash) and each point (coordinates, the shape of
every quantity, every entry's columns and their agreement, and the point's checksum).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, NoReturn

from ._errors import ParseError, TableError
from ._table_eval import Point
from ._table_numbers import FORMATS, bit_pattern, parse_exact, parse_float, round_binary
from ._tables import (
    COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    LoadedCase,
    LoadedEntry,
    LoadedTable,
    definition_hash,
    point_checksum,
)

_SOURCES = ("known", "generated", "rational")
_METADATA = {
    "verijac": str,
    "sympy": str,
    "mpmath": str,
    "digits": int,
    "seed": int,
    "generated_points": int,
    "rational": bool,
    "hessian": bool,
}


class _Where:
    """The location a message names: file, case, point, entry."""

    def __init__(self, path: str) -> None:
        self.parts = [path]

    def at(self, part: str) -> _Where:
        out = _Where(self.parts[0])
        out.parts = [*self.parts, part]
        return out

    def fail(self, message: str) -> NoReturn:
        raise TableError(f"{': '.join(self.parts)}: {message}")


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: _Where) -> Any:
    if not isinstance(obj, Mapping):
        where.fail(f"expected an object holding {key!r}, got {type(obj).__name__}")
    if key not in obj:
        where.fail(f"missing field {key!r}")
    value = obj[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        where.fail(f"field {key!r} must be {_JSON.get(names, names)}, got {value!r}"[:300])
    return value


_JSON = {"str": "a string", "int": "an integer", "bool": "true or false", "list": "a list",
         "dict": "an object", "str or NoneType": "a string or null"}  # fmt: skip


def load(path: str | os.PathLike[str]) -> LoadedTable:
    """Read and validate the table at ``path``.

    Raises:
        TableError: the first problem found, with its location.
    """
    from ._tables import file_hash

    name = os.fspath(path)
    where = _Where(name)
    try:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        where.fail(f"cannot read the table: {getattr(exc, 'strerror', None) or exc}")
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        # A table ends with its closing brace: a file that does not was cut short.
        hint = "; the file ends early: truncated?" if not text.rstrip().endswith("}") else ""
        problem = exc.msg.removesuffix(" starting at").removesuffix(" at")
        where.fail(
            f"not valid JSON at line {exc.lineno}, column {exc.colno}: {problem}{hint} (a table "
            "is the JSON that `verijac table --format json` writes)"
        )
    except ValueError as exc:
        where.fail(str(exc))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        where.fail(f"not a verijac reference table (its 'schema' field is not {SCHEMA!r})")
    version = _get(data, "schema_version", int, where)
    if version > SCHEMA_VERSION:
        where.fail(
            f"schema version {version} is newer than this verijac reads ({SCHEMA_VERSION}): "
            "the table was written by a newer verijac; upgrade verijac to read it"
        )
    if version != SCHEMA_VERSION:
        where.fail(f"unknown schema version {version}; this verijac reads version {SCHEMA_VERSION}")
    meta_where = where.at("metadata")
    metadata = _get(data, "metadata", dict, where)
    for key, kind in _METADATA.items():
        _get(metadata, key, kind, meta_where)
    _check_writer(metadata["verijac"], meta_where)
    if _get(data, "columns", list, where) != list(COLUMNS):
        where.fail(f"field 'columns' must be {list(COLUMNS)}, got {data['columns']!r}")
    cases = [_case(item, where, k) for k, item in enumerate(_get(data, "cases", list, where))]
    names = [c.name for c in cases]
    for n in names:
        if names.count(n) > 1:
            where.fail(f"case {n!r} appears {names.count(n)} times")
    return LoadedTable(name, file_hash(name), dict(metadata), cases)


def _no_constant(token: str) -> Any:
    raise ValueError(f"{token} is not a number a table may hold (JSON has no {token})")


def _check_writer(written_by: str, where: _Where) -> None:
    from packaging.version import InvalidVersion, Version

    from . import __version__

    try:
        newer = Version(written_by) > Version(__version__)
    except InvalidVersion:
        where.fail(f"field 'verijac' must be a version such as '0.1.0', got {written_by!r}")
    if newer:
        where.fail(
            f"the table was written by verijac {written_by}, newer than this verijac "
            f"{__version__}; upgrade verijac to read it"
        )


def _case(item: Any, base: _Where, k: int) -> LoadedCase:
    name = _get(item, "name", str, base.at(f"case {k}"))
    where = base.at(f"case {name!r}")
    definition = _get(item, "definition", dict, where)
    stored = _get(item, "hash", str, where)
    if definition_hash(name, definition) != stored:
        where.fail(
            "its definition (expressions, inputs, domains) no longer matches its hash: the "
            "table was edited or damaged; regenerate it with `verijac table`"
        )
    m, n = _check_definition(definition, where)
    quantities = _get(item, "quantities", dict, where)
    expected = {"f": (m,), "J": (m, n), "H": (m, n, n)}
    if set(quantities) not in ({"f", "J"}, {"f", "J", "H"}):
        where.fail(f"field 'quantities' must name f, J and optionally H, got {sorted(quantities)}")
    shapes = {}
    for q in ("f", "J", "H"):
        if q in quantities:
            if quantities[q] != list(expected[q]):
                where.fail(
                    f"quantity {q} must have shape {list(expected[q])} for {m} output and {n} "
                    f"input elements, got {quantities[q]!r}"
                )
            shapes[q] = expected[q]
    inputs = definition["inputs"]
    points, values = [], []
    seen: set[str] = set()
    for k, raw in enumerate(_get(item, "points", list, where)):
        point, entries = _point(raw, where, k, inputs, shapes)
        if point.id in seen:
            where.fail(f"point id {point.id!r} appears twice")
        seen.add(point.id)
        points.append(point)
        values.append(entries)
    return LoadedCase(name, definition, stored, shapes, points, values)


def _check_definition(definition: dict[str, Any], where: _Where) -> tuple[int, int]:
    """The output and input element counts; every expression read with the safe parser."""
    from ._case import array, scalar
    from ._parse import parse

    symbols: dict[str, Any] = {}
    n = 0
    for k, v in enumerate(_get(definition, "inputs", list, where)):
        w = where.at(f"input {k}")
        name = _get(v, "name", str, w)
        shape = _get(v, "shape", list, w)
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            w.fail(f"field 'shape' must be a list of integers >= 1, got {shape!r}")
        if not name.isidentifier():
            w.fail(f"input name must be an identifier, got {name!r}")
        _check_domain(_get(v, "domain", dict, w), w.at("domain"))
        symbols[name] = array(name, shape) if shape else scalar(name)
        n += math.prod(shape)
    m = 0
    for k, o in enumerate(_get(definition, "outputs", list, where)):
        w = where.at(f"output {k}")
        shape = _get(o, "shape", list, w)
        exprs = _get(o, "exprs", list, w)
        if len(exprs) != math.prod(shape):
            w.fail(f"{len(exprs)} expressions for shape {shape}")
        for e in exprs:
            if not isinstance(e, str):
                w.fail(f"an expression must be text, got {e!r}")
            try:
                parse(e, symbols=symbols)
            except ParseError as exc:
                w.fail(f"expression {e[:80]!r} does not parse: {exc}")
        m += len(exprs)
    if not m or not n:
        where.fail("a case needs at least one input and one output")
    _get(definition, "tuple_outputs", bool, where)
    return m, n


def _check_domain(domain: dict[str, Any], where: _Where) -> None:
    for key in ("lo", "hi"):
        text = _get(domain, key, str, where)
        if parse_float(text) is None:
            where.fail(f"{key!r} is {text!r}, not a number")
    for key in ("left_open", "right_open"):
        _get(domain, key, bool, where)
    for p in _get(domain, "exclude", list, where):
        if not isinstance(p, str) or parse_float(p) is None:
            where.fail(f"'exclude' holds {p!r}, not a number")


def _coordinate(text: Any, where: _Where) -> Any:
    if not isinstance(text, str):
        where.fail(f"a coordinate must be text such as '3', '-7/3' or '2.375', got {text!r}")
    exact = parse_exact(text)
    if exact is not None:
        return exact
    from ._parse import parse_number

    try:
        value = parse_number(text)
    except ParseError:
        where.fail(f"coordinate {text!r} is not a number")
    if not value.is_real or not value.is_finite:
        where.fail(f"coordinate {text!r} is not a finite real number")
    return value


def _flat(value: Any, shape: list[int], where: _Where) -> list[Any]:
    if not shape:
        return [value]
    if not isinstance(value, list) or len(value) != shape[0]:
        where.fail(f"expected a nested list of shape {shape}, got {str(value)[:80]}")
    return [x for v in value for x in _flat(v, shape[1:], where)]


def _point(
    raw: Any,
    base: _Where,
    k: int,
    inputs: list[dict[str, Any]],
    shapes: dict[str, tuple[int, ...]],
) -> tuple[Point, dict[str, list[LoadedEntry]]]:
    pid = _get(raw, "id", str, base.at(f"point {k}"))
    where = base.at(f"point {pid!r}")
    source = _get(raw, "source", str, where)
    if source not in _SOURCES:
        where.fail(f"field 'source' must be one of {_SOURCES}, got {source!r}")
    at = _get(raw, "at", dict, where)
    if set(at) != {v["name"] for v in inputs}:
        where.fail(f"'at' gives inputs {sorted(at)}, expected {sorted(v['name'] for v in inputs)}")
    coords = {
        v["name"]: [
            _coordinate(c, where.at(f"input {v['name']!r}"))
            for c in _flat(at[v["name"]], v["shape"], where.at(f"input {v['name']!r}"))
        ]
        for v in inputs
    }
    values: dict[str, list[LoadedEntry]] = {}
    for q, shape in shapes.items():
        entries = _get(raw, q, list, where)
        size = math.prod(shape)
        if len(entries) != size:
            where.fail(
                f"quantity {q} has {len(entries)} entries, expected {size} (shape {list(shape)})"
            )
        index = [()]  # type: list[tuple[int, ...]]
        for s in shape:
            index = [(*i, k) for i in index for k in range(s)]
        values[q] = [
            _entry(e, where.at(f"{q}[{','.join(map(str, i))}]"), list(i))
            for e, i in zip(entries, index, strict=True)
        ]
    checksum = _get(raw, "checksum", str, where)
    if point_checksum(raw) != checksum:
        where.fail(
            "its coordinates or values no longer match its checksum: the table was edited or "
            "damaged; regenerate it with `verijac table`"
        )
    return Point(pid, source, coords), values


def _entry(raw: Any, where: _Where, index: list[int]) -> LoadedEntry:
    if not isinstance(raw, dict):
        where.fail(f"an entry must be an object, got {str(raw)[:80]}")
    if _get(raw, "index", list, where) != index:
        where.fail(f"field 'index' is {raw['index']!r}, expected {index} (entries are row-major)")
    extra = set(raw) - {"index", *COLUMNS}
    if extra:
        where.fail(f"unknown field(s) {sorted(extra)}")
    exact_text = _get(raw, "exact", (str, type(None)), where)
    exact = None
    if exact_text is not None:
        exact = parse_exact(exact_text)
        if exact is None or "." in exact_text or "e" in exact_text.lower():
            where.fail(f"'exact' is {exact_text!r}, not an exact rational such as 48 or -7/3")
    decimal_text = _get(raw, "decimal", str, where)
    decimal = parse_exact(decimal_text)
    if decimal is None or "/" in decimal_text:
        where.fail(f"'decimal' is {decimal_text!r}, not a decimal number")
    floats = []
    for fmt_name in ("float64", "float32"):
        fmt = FORMATS[fmt_name]
        text = _get(raw, fmt_name, str, where)
        value = parse_float(text)
        if value is None:
            where.fail(f"{fmt_name!r} is {text!r}, not a number")
        if math.isfinite(value):  # the text read as a float32 is the float32 nearest to it
            value = round_binary(Fraction(text), fmt)
        hex_text = _get(raw, f"{fmt_name}_hex", str, where)
        if bit_pattern(value, fmt) != hex_text:
            where.fail(
                f"'{fmt_name}_hex' is {hex_text!r} but {fmt_name!r} {text!r} has the bit "
                f"pattern {bit_pattern(value, fmt)}"
            )
        if exact is not None and round_binary(exact, fmt) != value:
            where.fail(f"{fmt_name!r} {text!r} is not the exact value {exact_text} rounded")
        floats.append(value)
    return LoadedEntry(exact, decimal, floats[0], floats[1])


__all__ = ["load"]
