"""Safe parsing of untrusted expression text into SymPy objects.

The text is never executed: it is parsed with `ast.parse(..., mode="eval")` and the tree is
walked with an explicit whitelist of node types, building SymPy objects directly. `eval`,
`exec`, `sympify` and `parse_expr` are never called on the text.

This module holds the entry points and the limits on the text; `_parse_builder` walks the
tree, `_parse_rules` holds the whitelist, limits and messages, `_parse_functions` the
functions text may call.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

import sympy

from ._errors import ParseError
from ._parse_builder import _Builder
from ._parse_functions import KNOWN_FUNCTIONS as KNOWN_FUNCTIONS
from ._parse_functions import MAX_MINMAX_ARGS as MAX_MINMAX_ARGS
from ._parse_rules import _chain_kind, _clip

__all__ = [
    "KNOWN_FUNCTIONS",
    "MAX_DEPTH",
    "MAX_MINMAX_ARGS",
    "MAX_TEXT_LENGTH",
    "parse",
    "parse_number",
]

MAX_TEXT_LENGTH = 100_000
"""Longest text `parse` accepts, in characters."""
MAX_DEPTH = 100
"""Deepest AST nesting `parse` accepts (chains like `a + b + c` count as one level)."""


def _depth_ok(tree: ast.AST) -> bool:
    """Whether `tree` nests at most `MAX_DEPTH` levels; checked iteratively, never recursing.

    A left operand continuing the same chain (`a + b + c`) does not count as a new level.
    """
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop)):
                continue
            same_chain = (
                isinstance(node, ast.BinOp)
                and child is node.left
                and isinstance(child, ast.BinOp)
                and _chain_kind(child.op) is not None
                and _chain_kind(child.op) == _chain_kind(node.op)
            )
            stack.append((child, depth if same_chain else depth + 1))
    return True


def parse(
    text: str,
    *,
    symbols: Mapping[str, Any] | None = None,
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> Any:
    """Parse untrusted expression text into a SymPy object without executing it.

    Args:
        text: The expression, e.g. `"sin(x)**2 + y[0]"`. A top-level tuple `"a, b"` gives a
            Python tuple of parsed items; a list literal gives a `sympy.Array`.
        symbols: The names the text may use: SymPy symbols, or arrays/matrices for `x[i]`
            indexing. They take precedence over the constants `pi`, `E`, `oo` and `inf`. When
            `None`, any other name becomes `sympy.Symbol(name, real=True)`.
        functions: Extra functions, name to a callable returning a SymPy object, on top of
            `KNOWN_FUNCTIONS` (and overriding them). Without it, text may call every
            function of the function map, those added with `verijac.register_function`
            included, by its SymPy class name (and its lower-case name where unambiguous).

    Returns:
        A SymPy expression, condition or Array, or a tuple of them for a top-level tuple.

    Raises:
        ParseError: The text is not an allowed expression, is too long or too deeply nested,
            would build too large a number, or SymPy rejects the construction.
    """
    if not isinstance(text, str):
        raise ParseError(f"expected the expression as a str, got {type(text).__name__}.")
    if len(text) > MAX_TEXT_LENGTH:
        raise ParseError(
            f"expected at most {MAX_TEXT_LENGTH} characters, got {len(text)}. "
            "Simplify the expression or split it into parts."
        )
    extra = dict(functions or {})
    for name, fn in extra.items():
        if not (isinstance(name, str) and name.isidentifier() and not name.startswith("_")):
            raise ParseError(
                f"expected function names that are identifiers without a leading underscore, "
                f"got {name!r}. Rename the function."
            )
        if not callable(fn):
            raise ParseError(f"expected a callable for the function {name!r}, got {fn!r}.")
    stripped = text.strip()
    if not stripped:
        raise ParseError("expected an expression, got empty text. Write an expression.")
    too_deep = (
        f"cannot parse {_clip(stripped)!r}: expected at most {MAX_DEPTH} levels of nesting, "
        "got more. Simplify the expression or split it into parts."
    )
    try:
        tree = ast.parse(stripped, mode="eval")
    except (SyntaxError, ValueError) as exc:
        at = f" at column {exc.offset}" if isinstance(exc, SyntaxError) and exc.offset else ""
        raise ParseError(
            f"cannot parse {_clip(stripped)!r}: expected a valid expression, got a syntax "
            f"error{at}: {getattr(exc, 'msg', None) or exc}. Check brackets and operators."
        ) from None
    except (RecursionError, MemoryError):
        raise ParseError(
            f"cannot parse {_clip(stripped)!r}: expected at most {MAX_DEPTH} levels of nesting "
            "and at most about 3000 terms in one chain of operators, got more than Python's "
            "parser handles. Simplify the expression or split it into parts."
        ) from None
    if not _depth_ok(tree):
        raise ParseError(too_deep)
    builder = _Builder(stripped, symbols, {**KNOWN_FUNCTIONS, **extra})
    try:
        return builder.top(tree.body)
    except RecursionError:
        raise ParseError(too_deep) from None


def parse_number(text: str | int | float) -> sympy.Expr:
    """Parse an exact numeric value such as `3`, `"-1/2"`, `"2.5"`, `"pi/4"` or `"sqrt(2)"`.

    Args:
        text: An int, a float (kept as its exact binary value; infinities become `oo`), or
            the text of a constant expression.

    Returns:
        The SymPy number, free of symbols.

    Raises:
        ParseError: The value is not a number, is nan, or contains names or conditions.
    """
    if isinstance(text, bool):
        raise ParseError(f"expected a number, got the bool {text}. Write 0 or 1 instead.")
    if isinstance(text, int):
        return sympy.Integer(text)
    if isinstance(text, float):
        if math.isnan(text):
            raise ParseError("expected a number, got nan. Give a defined value.")
        if math.isinf(text):
            return sympy.oo if text > 0 else -sympy.oo
        return sympy.Float(text)
    if not isinstance(text, str):
        raise ParseError(f"expected a number or its text, got {type(text).__name__}.")
    value = parse(text, symbols={})
    if not isinstance(value, sympy.Expr) or value.free_symbols:
        raise ParseError(
            f"expected a number such as 3, -1/2, 2.5 or pi/4, got {_clip(text)!r}. "
            "Write a constant expression without names, conditions or arrays."
        )
    return value
