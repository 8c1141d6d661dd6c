"""Cases written as text (TOML): parsed with the safe parser, never executed.

```toml
name = "text_softplus"
description = "softplus written as text"
tags = ["elementwise", "smooth"]
outputs = "log(1 + exp(x))"        # a list of strings is a tuple of outputs;
                                   # "[[...], [...]]" inside a string is an array output
exclude = []                       # expressions whose zero sets are excluded

[inputs]
x = []                             # a scalar; [2, 2] is a 2×2 array input x[i,j]

[domain]
x = [-10, 10]                      # closed; or "positive", or
                                   # { lo = -1, hi = 1, left_open = true, exclude = [0] }

[tolerances.float32]
rtol = 1e-5

[[known]]
at = { x = 0 }
value = "log(2)"
jacobian = "1/2"
```
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sympy

from ._case import Case, KnownPoint, array, scalar
from ._domain import Interval
from ._errors import CaseError, ParseError, VerijacError
from ._parse import parse, parse_number

_TOP_KEYS = {
    "name",
    "description",
    "tags",
    "inputs",
    "outputs",
    "domain",
    "exclude",
    "known",
    "tolerances",
    "margin",
}
_DOMAIN_KEYS = {"lo", "hi", "left_open", "right_open", "exclude", "margin"}
_KNOWN_KEYS = {"at", "value", "jacobian", "hessian", "vjp", "note"}


def _require(
    mapping: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str
) -> Any:
    if key not in mapping:
        raise CaseError(f"{where}: missing required key {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise CaseError(f"{where}: {key!r} must be {names}, got {value!r}")
    return value


def _number(value: Any, where: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CaseError(f"{where}: expected a number or a numeric string, got {value!r}")
    try:
        return parse_number(value)
    except ParseError as exc:
        raise ParseError(f"{where}: {exc}") from None


def _real(value: Any, where: str) -> float:
    """A real number from TOML (a number or a numeric string such as "pi/2")."""
    number = _number(value, where)
    try:
        return float(number)
    except (TypeError, ValueError):
        raise CaseError(f"{where}: expected a real number, got {value!r} = {number}") from None


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise CaseError(f"{where}: expected true or false, got {value!r}")
    return value


def _strings(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CaseError(f"{where}: {key!r} must be a list of strings, got {value!r}")
    return value


def _domain(spec: Any, where: str) -> Any:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, list) and len(spec) == 2:
        return (_real(spec[0], where), _real(spec[1], where))
    if isinstance(spec, dict):
        unknown = set(spec) - _DOMAIN_KEYS
        if unknown:
            raise CaseError(
                f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_DOMAIN_KEYS)}"
            )
        lo = _real(spec["lo"], f"{where}.lo") if "lo" in spec else float("-inf")
        hi = _real(spec["hi"], f"{where}.hi") if "hi" in spec else float("inf")
        raw_exclude = spec.get("exclude", [])
        if not isinstance(raw_exclude, list):
            raise CaseError(f"{where}.exclude must be a list of numbers, got {raw_exclude!r}")
        return Interval(
            lo,
            hi,
            left_open=_flag(spec.get("left_open", False), f"{where}.left_open"),
            right_open=_flag(spec.get("right_open", False), f"{where}.right_open"),
            exclude=tuple(_real(p, f"{where}.exclude") for p in raw_exclude),
            margin=_real(spec.get("margin", 1e-3), f"{where}.margin"),
        )
    raise CaseError(
        f'{where}: expected [lo, hi], a sign such as "positive", or a table with lo/hi, got {spec!r}'
    )


def _values(value: Any) -> Any:
    """Known-point values: strings inside nested lists are parsed as exact numbers."""
    if isinstance(value, list):
        return [_values(v) for v in value]
    if isinstance(value, str):
        return parse_number(value)
    return value


def _vjp_pairs(value: Any, where: str) -> list[tuple[Any, Any]]:
    if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
        raise CaseError(f"{where} must be a list of [cotangent, result] pairs, got {value!r}")
    return [(_values(c), _values(r)) for c, r in value]


#: Most elements one array input of a text case may have.
MAX_ARRAY_ELEMENTS = 65_536


def case_from_text(text: str, *, source: str = "<text>") -> Case:
    """Build a `Case` from TOML text, parsing every expression safely.

    Every error names ``source`` (the file).

    Raises:
        ParseError: the text is not valid TOML or an expression is refused.
        CaseError: a key is missing, unknown or of the wrong type, or the case is invalid.
    """
    try:
        return _case_from_text(text, source)
    except VerijacError as exc:
        if str(exc).startswith(source):
            raise
        raise type(exc)(f"{source}: {exc}") from None


def _case_from_text(text: str, source: str) -> Case:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise CaseError(f"{source}: unknown keys {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
    name = _require(data, "name", str, source)
    where = f"{source} (case {name!r})"
    raw_inputs = _require(data, "inputs", dict, where)
    inputs: dict[str, Any] = {}
    for key, shape in raw_inputs.items():
        if shape in ([], "scalar"):
            inputs[key] = scalar(key)
        elif isinstance(shape, list) and all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape
        ):
            if math.prod(shape) > MAX_ARRAY_ELEMENTS:
                raise CaseError(
                    f"{where}: inputs.{key} = {shape} has {math.prod(shape)} elements, more than "
                    f"{MAX_ARRAY_ELEMENTS}; write such a case in Python"
                )
            inputs[key] = array(key, shape)
        else:
            raise CaseError(
                f"{where}: inputs.{key} must be [] (scalar) or a shape of positive integers like "
                f"[2, 2] or [2, 3, 4], got {shape!r}"
            )
    symbols: dict[str, Any] = dict(inputs)
    for value in inputs.values():
        if not hasattr(value, "shape"):
            continue
        for s in sympy.flatten(value.tolist()):  # elements by their full names x[0,1]
            symbols[s.name] = s
    raw_out = _require(data, "outputs", (str, list), where)
    if isinstance(raw_out, list):
        if not raw_out or not all(isinstance(o, str) for o in raw_out):
            raise CaseError(f"{where}: outputs must be a string or a non-empty list of strings")
        outputs: Any = tuple(parse(o, symbols=symbols) for o in raw_out)
    else:
        outputs = parse(raw_out, symbols=symbols)
    domain = {
        k: _domain(v, f"{where} domain.{k}")
        for k, v in _require(data, "domain", dict, where).items()
    }
    exclude = [parse(e, symbols=symbols) for e in _strings(data, "exclude", where)]
    known = []
    raw_known = data.get("known", [])
    if not isinstance(raw_known, list):
        raise CaseError(f"{where}: known must be an array of tables ([[known]]), got {raw_known!r}")
    for k, entry in enumerate(raw_known):
        if not isinstance(entry, dict) or set(entry) - _KNOWN_KEYS:
            raise CaseError(
                f"{where}: known[{k}] must be a table with keys among {sorted(_KNOWN_KEYS)}"
            )
        at = {
            key: _values(v) for key, v in _require(entry, "at", dict, f"{where} known[{k}]").items()
        }
        known.append(
            KnownPoint(
                at=at,
                value=_values(entry.get("value")),
                jacobian=_values(entry.get("jacobian")),
                hessian=_values(entry.get("hessian")),
                vjp=_vjp_pairs(entry.get("vjp", []), f"{where} known[{k}].vjp"),
                note=str(entry.get("note", "")),
            )
        )
    tags = _strings(data, "tags", where)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise CaseError(f"{where}: description must be a string, got {description!r}")
    return Case(
        name,
        inputs=inputs,
        outputs=outputs,
        domain=domain,
        exclude=exclude,
        known=known,
        tags=tags,
        tolerances=data.get("tolerances"),
        description=description,
        margin=_real(data.get("margin", 1e-3), f"{where} margin"),
    )


def load_case_file(path: str | os.PathLike[str]) -> Case:
    """Read a ``.toml`` case file.

    Raises:
        ParseError: unreadable or invalid file (the message names the file).
        CaseError: the case is invalid.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseError(f"cannot read case file {str(p)!r}: {exc}") from None
    return case_from_text(text, source=str(p))
