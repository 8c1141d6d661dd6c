"""The walk over one parsed expression tree that builds its SymPy object, node by node, from
the whitelist and limits of `_parse_rules`; every refusal is a `ParseError` quoting the node."""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import sympy
from sympy.matrices import MatrixBase
from sympy.tensor.array import NDimArray

from ._errors import ParseError
from ._parse_functions import _how_to_register
from ._parse_rules import (
    _ARITHMETIC,
    _COMPARISONS,
    _CONSTANTS,
    _MAX_BITS,
    _MAX_EXPONENT,
    _MAX_ROOT_BITS,
    _MESSAGES,
    _OPERATOR_TEXT,
    _REFUSED_NODES,
    _SPECIAL_ARG_LIMITS,
    _bits,
    _chain_kind,
    _clip,
    _coefficient_bits,
    _is_condition,
    _radical_bits,
)


class _Builder:
    """Walks one parsed expression tree and builds the SymPy result."""

    def __init__(
        self,
        text: str,
        symbols: Mapping[str, Any] | None,
        functions: Mapping[str, Callable[..., Any]],
    ) -> None:
        self.text = text
        self.symbols = symbols
        self.functions = functions

    def segment(self, node: ast.AST) -> str:
        """The (clipped) source text of `node`."""
        return _clip(ast.get_source_segment(self.text, node) or type(node).__name__)

    def fail(self, node: ast.AST, key: str, got: str | None = None, **fields: Any) -> NoReturn:
        """Raise the ParseError `key` of `_MESSAGES`, quoting `node` and its position."""
        expected, fix = (part.format(**fields) for part in _MESSAGES[key])
        line, column = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
        where = f"line {line}, column {column}" if line > 1 else f"column {column}"
        got = got or f"`{self.segment(node)}`"
        raise ParseError(
            f"cannot parse {_clip(self.text)!r}: expected {expected}, got {got} at {where}. {fix}"
        ) from None

    def apply(self, node: ast.AST, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Return `fn(*args)`, turning SymPy errors and oversized or undefined results into errors."""
        try:
            result = fn(*args)
        except ParseError:
            raise
        except Exception as exc:
            shown = _clip(", ".join(str(arg) for arg in args), 120)
            error = f"{type(exc).__name__}: {_clip(str(exc), 160)}"
            got = f"`{self.segment(node)}`, which fails with {error} (arguments: {shown})"
            self.fail(node, "failed", got, what=what)
        if result is sympy.nan or result is sympy.zoo:
            self.fail(node, "undefined", f"the undefined value {result}")
        if _coefficient_bits(result) > _MAX_BITS:
            self.fail(node, "big")
        return result

    def top(self, node: ast.expr) -> Any:
        """Build the top level, where a tuple becomes a Python tuple of built items."""
        if isinstance(node, ast.Tuple):
            if not node.elts:
                self.fail(node, "empty")
            return tuple(self.build(item) for item in node.elts)
        return self.build(node)

    def build(self, node: ast.expr, condition: bool = False) -> Any:
        """Build the SymPy object for `node`; `condition` allows True/False literals."""
        if isinstance(node, ast.Constant):
            return self.constant(node, condition)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BoolOp):
            combine = sympy.And if isinstance(node.op, ast.And) else sympy.Or
            conditions = [self.condition(value) for value in node.values]
            return self.apply(node, "and/or", combine, *conditions)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.List):
            return self.apply(node, "array", sympy.Array, self.nested_list(node)[0])
        if isinstance(node, ast.Tuple):
            self.fail(node, "tuple")
        what, fix = _REFUSED_NODES.get(type(node), (type(node).__name__, "Use only arithmetic."))
        self.fail(node, "refused", f"{what} `{self.segment(node)}`", fix=fix)

    def condition(self, node: ast.expr) -> Any:
        """Build a condition: a comparison, True/False, or and/or/not of conditions."""
        value = self.build(node, condition=True)
        if not _is_condition(value):
            self.fail(node, "condition")
        return value

    def constant(self, node: ast.Constant, condition: bool) -> Any:
        """Build an int or float literal, or True/False inside a condition."""
        value = node.value
        if isinstance(value, bool):
            if not condition:
                self.fail(node, "bool")
            return sympy.true if value else sympy.false
        if isinstance(value, int):
            return self.apply(node, "integer", sympy.Integer, value)
        if isinstance(value, float):
            # Build from the literal's text, so that 0.1 is Float("0.1"), not the binary double.
            literal = (ast.get_source_segment(self.text, node) or repr(value)).replace("_", "")
            if len(literal) > 1000:
                self.fail(node, "long_float")
            return self.apply(node, "float", sympy.Float, literal)
        if isinstance(value, complex):
            self.fail(node, "complex")
        if isinstance(value, (str, bytes)):
            self.fail(node, "string")
        self.fail(node, "literal")

    def name(self, node: ast.Name) -> Any:
        """Resolve a name through `symbols`, the constants, or as a new real Symbol."""
        name = node.id
        if name.startswith("_"):
            self.fail(node, "underscore")
        if self.symbols is not None and name in self.symbols:
            return self.symbols[name]
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name == "nan":
            self.fail(node, "nan")
        if name in self.functions:
            self.fail(node, "function_value", name=name)
        if self.symbols is None:
            return sympy.Symbol(name, real=True)
        known = sorted([*self.symbols, *_CONSTANTS])
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"Did you mean {', '.join(close)}? " if close else ""
        got = f"the unknown name `{name}`"
        self.fail(
            node, "unknown_name", got, known=_clip(", ".join(known), 300), hint=hint, name=name
        )

    def binop(self, node: ast.BinOp) -> Any:
        """Build a chain of + - or * /, or hand other operators to `power`."""
        kind = _chain_kind(node.op)
        if kind is None:
            return self.power(node)
        # Walk the left spine iteratively, so long sums and products never recurse deeply and
        # are built with one Add or Mul (sequential a + b + c + ... is quadratic in SymPy).
        operands: list[tuple[ast.operator, ast.expr]] = []
        current: ast.expr = node
        while isinstance(current, ast.BinOp) and _chain_kind(current.op) == kind:
            operands.append((current.op, current.right))
            current = current.left
        first = self.build(current)
        values: list[tuple[ast.operator, Any]] = []
        for op, right in reversed(operands):
            value = self.build(right)
            if isinstance(op, ast.Div) and isinstance(value, sympy.Expr) and value.is_zero:
                self.fail(right, "zero")
            values.append((op, value))
        if not all(
            isinstance(value, sympy.Expr) for value in [first, *(value for _, value in values)]
        ):
            result = first  # arrays or matrices: combine pairwise with the ordinary operators
            for op, value in values:
                result = self.apply(node, "arithmetic", _ARITHMETIC[type(op)], result, value)
            return result
        if kind == "add":
            terms = [first, *(-value if isinstance(op, ast.Sub) else value for op, value in values)]
            return self.apply(node, "sum", sympy.Add, *terms)
        factors = [first]
        factors += [
            sympy.Pow(value, -1) if isinstance(op, ast.Div) else value for op, value in values
        ]
        if sum(_coefficient_bits(factor) for factor in factors) > _MAX_BITS:
            self.fail(node, "big")
        if sum(_radical_bits(factor) for factor in factors) > _MAX_ROOT_BITS:
            self.fail(node, "root")
        return self.apply(node, "product", sympy.Mul, *factors)

    def power(self, node: ast.BinOp) -> Any:
        """Build `a ** b`, refusing numeric powers too large to build exactly."""
        if isinstance(node.op, ast.BitXor):
            self.fail(node, "xor")
        if not isinstance(node.op, ast.Pow):
            text = _OPERATOR_TEXT.get(type(node.op), type(node.op).__name__)
            self.fail(node, "operator", f"`{text}` in `{self.segment(node)}`")
        base, exponent = self.build(node.left), self.build(node.right)
        if isinstance(base, (MatrixBase, NDimArray)):
            self.fail(node, "matrix_power")
        if isinstance(exponent, sympy.Number) and isinstance(base, sympy.Expr) and base.is_number:
            magnitude = abs(float(exponent))
            if not magnitude <= _MAX_EXPONENT:
                self.fail(node, "exponent")
            if (_coefficient_bits(base) - 2) * magnitude > _MAX_BITS:
                self.fail(node, "big")
            if not exponent.is_integer and _coefficient_bits(base) > _MAX_ROOT_BITS:
                self.fail(node, "root")
        return self.apply(node, "power", operator.pow, base, exponent)

    def unary(self, node: ast.UnaryOp) -> Any:
        """Build unary `+`, `-` or `not`."""
        if isinstance(node.op, ast.Not):
            return self.apply(node, "not", sympy.Not, self.condition(node.operand))
        if isinstance(node.op, ast.Invert):
            self.fail(node, "invert")
        sign = operator.neg if isinstance(node.op, ast.USub) else operator.pos
        return self.apply(node, "sign", sign, self.build(node.operand))

    def compare(self, node: ast.Compare) -> Any:
        """Build a comparison; a chained one becomes an And of the pairs."""
        left = self.build(node.left)
        relations = []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            relation = _COMPARISONS.get(type(op))
            if relation is None:
                self.fail(node, "comparison", f"`{_OPERATOR_TEXT.get(type(op), '?')}`")
            right = self.build(comparator)
            relations.append(self.apply(node, "comparison", relation, left, right))
            left = right
        if len(relations) == 1:
            return relations[0]
        return self.apply(node, "chained comparison", sympy.And, *relations)

    def call(self, node: ast.Call) -> Any:
        """Build a call of a known or user function with positional arguments."""
        if not isinstance(node.func, ast.Name):
            self.fail(node.func, "callee")
        name = node.func.id
        if name.startswith("_"):
            self.fail(node.func, "underscore")
        fn = self.functions.get(name)
        if fn is None:
            known = list(self.functions)
            close = [known_name for known_name in known if known_name.lower() == name.lower()]
            close += difflib.get_close_matches(name, known, n=3)
            # One name per function: `Heaviside`, not also its alias `heaviside`.
            by_function = {id(self.functions[n]): n for n in reversed(close)}
            close = [n for n in dict.fromkeys(close) if by_function[id(self.functions[n])] == n]
            hint = f"Did you mean {', '.join(close[:3])}? " if close else ""
            register = _how_to_register(name, self.functions)
            if name in (self.symbols or {}):
                hint, register = f"`{name}` is a variable, not a function. {hint}".rstrip(), ""
            got = f"the unknown function `{name}`"
            self.fail(node.func, "unknown_function", got, hint=hint, register=register)
        if node.keywords:
            self.fail(node.keywords[0], "keyword", name=name)
        if name == "Piecewise":
            args: list[Any] = [self.piece(arg) for arg in node.args]
        else:
            args = [self.build(arg) for arg in node.args]
        limit = _SPECIAL_ARG_LIMITS.get(name)
        for arg_node, arg in zip(node.args, args, strict=True):
            if isinstance(arg, sympy.Rational) and _bits(arg) > _MAX_ROOT_BITS:
                self.fail(arg_node, "root")
            if limit is not None and isinstance(arg, sympy.Rational) and abs(arg) > limit:
                self.fail(arg_node, "special", name=name, limit=limit)
        result = self.apply(node, f"call of `{name}`", fn, *args)
        if not isinstance(result, (sympy.Basic, MatrixBase)):
            self.fail(node, "result", f"a {type(result).__name__}", name=name)
        return result

    def piece(self, node: ast.expr) -> tuple[Any, Any]:
        """Build one `(value, condition)` pair of a Piecewise call."""
        if not isinstance(node, ast.Tuple) or len(node.elts) != 2:
            self.fail(node, "piece")
        return self.build(node.elts[0]), self.condition(node.elts[1])

    def subscript(self, node: ast.Subscript) -> Any:
        """Build `x[i]` or `x[i, j]` on a named array, with bounds-checked literal indices."""
        if not isinstance(node.value, ast.Name):
            self.fail(node, "subscripted")
        name = node.value.id
        target = self.name(node.value)
        if not isinstance(target, (NDimArray, MatrixBase)):
            self.fail(node.value, "not_array", name=name)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        shape = tuple(target.shape)
        if len(items) != len(shape):
            self.fail(node, "rank", rank=len(shape), name=name, shape=shape)
        indices = []
        for item, size in zip(items, shape, strict=True):
            if not (isinstance(item, ast.Constant) and type(item.value) is int):
                self.fail(item, "index")
            if not 0 <= item.value < size:
                self.fail(item, "range", last=size - 1, name=name, shape=shape)
            indices.append(item.value)
        return target[tuple(indices)] if len(indices) > 1 else target[indices[0]]

    def nested_list(self, node: ast.expr) -> tuple[Any, tuple[int, ...]]:
        """Build a (nested) list literal into nested Python lists, and return its shape too."""
        if not isinstance(node, ast.List):
            value = self.build(node)
            if isinstance(value, (NDimArray, MatrixBase)):
                self.fail(node, "element")
            return value, ()
        if not node.elts:
            self.fail(node, "empty_list")
        built = [self.nested_list(item) for item in node.elts]
        shapes = {shape for _, shape in built}
        if len(shapes) != 1:
            self.fail(node, "ragged")
        return [value for value, _ in built], (len(built), *shapes.pop())
