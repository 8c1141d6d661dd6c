"""Validation of `Case` pieces at the boundary: every defect becomes a clear `CaseError`.

This module checks the case's structure (its name, inputs and their domains, tags, margin,
tolerances, known failures); `_validate_expr` checks each expression and builds the outputs,
`_validate_domain` probes the domain, `_validate_known` checks the known points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import sympy
from sympy.tensor.array import NDimArray

from ._domain import Interval, as_interval
from ._errors import CaseError, DomainError, UsageError
from ._layout import Shape
from ._parts import Variable, is_identifier
from ._tolerances import check_path_pattern, dtype_name

# Re-exported: the strategies, `check_op` and the tables import these from here.
from ._validate_domain import PROBE_POINTS as PROBE_POINTS
from ._validate_domain import PROBE_TRIES as PROBE_TRIES
from ._validate_domain import probe_points as probe_points
from ._validate_known import _flatten as _flatten


def check_name(name: Any) -> str:
    """The case's name: an identifier."""
    if not isinstance(name, str) or not is_identifier(name):
        raise CaseError(
            f"a case name must be an identifier (letters, digits, underscores), got name={name!r}"
        )
    return name


def check_margin(case: str, margin: Any) -> float:
    """The exclusion margin: a finite number > 0."""
    if (
        isinstance(margin, bool)
        or not isinstance(margin, (int, float))
        or not math.isfinite(margin)
        or margin <= 0
    ):
        raise CaseError(f"case {case!r}: margin must be a finite number > 0, got margin={margin!r}")
    return float(margin)


def check_tags(case: str, tags: Any) -> frozenset[str]:
    """Tags: an iterable of strings (a single string would silently become its letters)."""
    if isinstance(tags, str) or not all(isinstance(t, str) for t in tags):
        raise CaseError(
            f"case {case!r}: tags must be a collection of strings such as {{'smooth'}}, got "
            f"tags={tags!r}"
        )
    return frozenset(tags)


def _flat_symbols(case: str, name: str, value: Any) -> tuple[Shape, list[Any]]:
    if isinstance(value, sympy.Symbol):
        return (), [value]
    if isinstance(value, sympy.MatrixBase):
        return tuple(value.shape), list(value)
    if isinstance(value, (list, tuple)):
        value = sympy.Array(value)
    if isinstance(value, NDimArray):
        return tuple(value.shape), list(sympy.flatten(value.tolist())) if value.shape else [
            value[()]
        ]
    raise CaseError(
        f"case {case!r}: input {name!r} must be a SymPy Symbol or an array of Symbols "
        f"(verijac.scalar / verijac.array), got {value!r} of type {type(value).__name__}"
    )


def normalise_inputs(
    case: str, inputs: Mapping[str, Any], domain: Mapping[str, Any]
) -> tuple[Variable, ...]:
    """Check the inputs and their domains; return `Variable`s with real symbols."""
    if not isinstance(inputs, Mapping) or not inputs:
        raise CaseError(
            f"case {case!r}: inputs must be a non-empty mapping name → symbol, got {inputs!r}"
        )
    if not isinstance(domain, Mapping):
        raise DomainError(
            f"case {case!r}: domain must be a mapping input name → (lo, hi), got {domain!r}"
        )
    unknown = set(domain) - set(inputs)
    if unknown:
        raise DomainError(
            f"case {case!r}: domain names unknown inputs {sorted(unknown)}; the inputs are "
            f"{list(inputs)}"
        )
    seen: dict[sympy.Symbol, str] = {}
    names: set[str] = set()
    variables = []
    for name, value in inputs.items():
        if not isinstance(name, str) or not is_identifier(name):
            raise CaseError(f"case {case!r}: input names must be identifiers, got {name!r}")
        shape, elements = _flat_symbols(case, name, value)
        symbols = []
        for el in elements:
            if not isinstance(el, sympy.Symbol):
                raise CaseError(
                    f"case {case!r}: input {name!r} must hold only Symbols, got element {el!r}; "
                    "build array inputs with verijac.array(name, shape)"
                )
            if el.is_commutative is False:
                raise CaseError(
                    f"case {case!r}: input symbol {el.name!r} is non-commutative; verijac checks "
                    "real functions: use verijac.scalar / verijac.array"
                )
            real = el if el.is_real else sympy.Symbol(el.name, real=True)
            if el in seen or real in seen or el.name in names:
                where = seen.get(el, seen.get(real, name))
                raise CaseError(
                    f"case {case!r}: symbol {el.name!r} appears twice (in input {where!r} and "
                    f"input {name!r}); every input element needs its own symbol"
                )
            seen[el] = seen[real] = name
            names.add(el.name)
            symbols.append(real)
        if name not in domain:
            raise DomainError(
                f"case {case!r}: input {name!r} has no domain; give domain={{{name!r}: (lo, hi)}}"
                " or a sign such as 'positive'"
            )
        try:
            interval = as_interval(domain[name], name=name)
        except DomainError as exc:
            raise DomainError(f"case {case!r}: {exc}") from None
        for el in elements:
            interval = honour_assumptions(case, name, el, interval)
        variables.append(Variable(name, shape, tuple(symbols), interval))
    return tuple(variables)


#: The assumptions a refusal names first (SymPy derives many more from each of them).
_MAIN_ASSUMPTIONS = (
    "real", "integer", "rational", "irrational", "algebraic", "transcendental", "prime",
    "even", "odd", "positive", "negative", "nonnegative", "nonpositive", "nonzero", "zero",
)  # fmt: skip


def _sign_facts(interval: Interval) -> dict[str, bool]:
    """The sign assumptions every point of ``interval`` satisfies."""
    facts = {}
    if interval.lo >= 0:
        facts["nonnegative"] = True
    if interval.hi <= 0:
        facts["nonpositive"] = True
    if not interval.contains(0.0) and not (interval.lo < 0 < interval.hi):
        facts["positive" if interval.lo >= 0 else "negative"] = True
    elif not interval.contains(0.0):
        facts["nonzero"] = True
    return facts


def honour_assumptions(case: str, name: str, el: sympy.Symbol, interval: Interval) -> Interval:
    """The domain of input ``name`` after checking that it honours ``el``'s assumptions.

    SymPy simplifies with a symbol's assumptions as soon as an expression is built
    (``sqrt(x**2)`` is ``x`` for a positive ``x``, ``sin(pi*x)`` is 0 for an integer ``x``), so
    an assumption the domain does not honour would silently change the "exact" truth. A sign
    assumption that excludes only the point 0 of the domain (``positive`` on ``[0, 2]``)
    removes that point; any other assumption the domain does not imply is refused.

    Raises:
        CaseError: ``el`` assumes something (integer, positive on ``(-1, 1)``, …) that the
            domain does not imply.
    """
    facts = el.assumptions0
    declared = interval
    try:
        if (facts.get("positive") or facts.get("zero") is False) and interval.lo == 0:
            interval = replace(interval, left_open=True)
        if (facts.get("negative") or facts.get("zero") is False) and interval.hi == 0:
            interval = replace(interval, right_open=True)
        if facts.get("zero") is False and interval.lo < 0 < interval.hi:
            interval = replace(interval, exclude=(*interval.exclude, 0.0))
    except DomainError:
        pass  # the single point of [0, 0] is the point the assumption removes: refused below
    implied = sympy.Symbol(el.name, real=True, **_sign_facts(interval)).assumptions0
    wrong = sorted(k for k, v in facts.items() if k != "commutative" and implied.get(k) != v)
    if wrong:
        main = [k for k in _MAIN_ASSUMPTIONS if k in wrong] or wrong
        given = ", ".join(f"{k}={facts[k]}" for k in main)
        raise CaseError(
            f"case {case!r}: input symbol {el.name!r} of input {name!r} assumes {given}, which "
            f"its domain {declared} does not imply; SymPy has already simplified the "
            "expressions with these assumptions, so the exact derivatives would be wrong on "
            "the domain. Build the input with verijac.scalar / verijac.array (real symbols) or "
            "narrow the domain to match"
        )
    return interval


def check_tolerances(
    case: str, tolerances: Mapping[str, Mapping[str, float]] | None
) -> dict[str, dict[str, float]]:
    """Per dtype name, ``{"rtol": …, "atol": …}`` of finite numbers >= 0."""
    if tolerances is not None and not isinstance(tolerances, Mapping):
        raise CaseError(
            f"case {case!r}: tolerances must map a dtype name to {{'rtol': …, 'atol': …}}, got "
            f"{tolerances!r}"
        )
    out: dict[str, dict[str, float]] = {}
    for dtype, tol in (tolerances or {}).items():
        try:
            name = dtype_name(dtype)
        except UsageError as exc:
            raise CaseError(f"case {case!r}: tolerances: {exc}") from None
        if not isinstance(tol, Mapping) or not set(tol) <= {"rtol", "atol"}:
            raise CaseError(
                f"case {case!r}: tolerances[{dtype!r}] must be a mapping with keys 'rtol' and/or "
                f"'atol', got {tol!r}"
            )
        clean = {}
        for key, val in tol.items():
            if (
                isinstance(val, bool)
                or not isinstance(val, (int, float))
                or not math.isfinite(val)
                or val < 0
            ):
                raise CaseError(
                    f"case {case!r}: tolerances[{dtype!r}][{key!r}] must be a finite number >= 0, "
                    f"got {val!r}"
                )
            clean[key] = float(val)
        out[name] = clean
    return out


def check_known_failures(case: str, known: Mapping[str, str] | None) -> dict[str, str]:
    """``"PATH_GLOB"`` or ``"PATH_GLOB@DTYPE"`` → a reason; a pattern must select a path."""
    if known is None:
        return {}
    if not isinstance(known, Mapping):
        raise CaseError(
            f"case {case!r}: known_failures must map 'PATH_GLOB' or 'PATH_GLOB@DTYPE' to a "
            f"reason, got {known!r}; e.g. {{'functional.hessian@float32': 'torch … because …'}}"
        )
    out: dict[str, str] = {}
    for key, reason in known.items():
        pattern, at, dtype = key.partition("@") if isinstance(key, str) else ("", "", "")
        if not pattern.strip():
            raise CaseError(
                f"case {case!r}: known_failures keys must be 'PATH_GLOB' or 'PATH_GLOB@DTYPE' "
                f"strings, got {key!r}"
            )
        try:
            check_path_pattern(pattern, f"known_failures[{key!r}]")
        except UsageError as exc:
            raise CaseError(f"case {case!r}: {exc}") from None
        if at:
            try:
                dtype = dtype_name(dtype)
            except UsageError:
                raise CaseError(
                    f"case {case!r}: known_failures[{key!r}]: the part after '@' must be a dtype "
                    f"name (float64, float32, float16, bfloat16), got {dtype!r}"
                ) from None
        if not isinstance(reason, str) or not reason.strip():
            raise CaseError(
                f"case {case!r}: known_failures[{key!r}] must be a non-empty reason naming the "
                f"torch behaviour, got {reason!r}"
            )
        out[f"{pattern}@{dtype}" if at else pattern] = reason.strip()
    return out
