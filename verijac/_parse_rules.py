"""What expression text may hold, as tables: its constants, operators and comparisons, the
node types refused (with the fix each refusal suggests), the message of every refusal, and
the limits on the size of exact numbers built from it."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

import sympy
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanAtom, BooleanFunction

_MAX_EXPONENT = 1000  # largest |exponent| of a power whose base and exponent are both numbers
_MAX_BITS = 33_220  # about 10_000 decimal digits: largest exact rational built
_MAX_ROOT_BITS = 1024  # largest exact rational taken to a fractional power or passed to a function
_SPECIAL_ARG_LIMITS = {
    "gamma": 1000, "loggamma": 1000, "lgamma": 1000, "digamma": 1000, "polygamma": 100, "zeta": 100,
}  # fmt: skip

_CONSTANTS: dict[str, Any] = {"pi": sympy.pi, "E": sympy.E, "oo": sympy.oo, "inf": sympy.oo}
_ADDITIVE = (ast.Add, ast.Sub)
_MULTIPLICATIVE = (ast.Mult, ast.Div)
_COMPARISONS: dict[type[ast.cmpop], Callable[..., Any]] = {
    ast.Lt: sympy.Lt, ast.LtE: sympy.Le, ast.Gt: sympy.Gt, ast.GtE: sympy.Ge,
    ast.Eq: sympy.Eq, ast.NotEq: sympy.Ne,
}  # fmt: skip
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}  # fmt: skip
_OPERATOR_TEXT = {
    ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitAnd: "&", ast.Is: "is", ast.IsNot: "is not", ast.In: "in",
    ast.NotIn: "not in",
}  # fmt: skip
_REFUSED_NODES: dict[type[ast.AST], tuple[str, str]] = {
    ast.Attribute: ("attribute access", "Call functions by plain name, e.g. `sin(x)`."),
    ast.Lambda: ("a lambda", "Write the expression directly."),
    ast.ListComp: ("a comprehension", "Write the elements out as a list literal."),
    ast.SetComp: ("a comprehension", "Write the elements out as a list literal."),
    ast.DictComp: ("a comprehension", "Write the elements out as a list literal."),
    ast.GeneratorExp: ("a comprehension", "Write the elements out as a list literal."),
    ast.JoinedStr: ("an f-string", "Write the expression itself, not a string."),
    ast.NamedExpr: ("an assignment expression (:=)", "Write the expression directly."),
    ast.IfExp: ("a conditional expression", "Use `Piecewise((a, cond), (b, True))`."),
    ast.Dict: ("a dict literal", "Use a list literal for arrays."),
    ast.Set: ("a set literal", "Use a list literal for arrays."),
    ast.Starred: ("a starred expression", "Write the arguments out one by one."),
    ast.Slice: ("a slice", "Index one element at a time with integer literals."),
    ast.Await: ("await", "Write the expression directly."),
    ast.Yield: ("yield", "Write the expression directly."),
    ast.YieldFrom: ("yield", "Write the expression directly."),
}
# Error messages: key -> (what was expected, how to fix it), formatted with per-use fields.
_MESSAGES: dict[str, tuple[str, str]] = {
    "refused": ("an arithmetic expression", "{fix}"),
    "tuple": ("an expression", "Tuples are allowed only at the top level (several outputs) and as (value, condition) pairs in Piecewise."),
    "empty": ("at least one item", "Write the items separated by commas."),
    "failed": ("a valid {what}", "Check the operands and the number of arguments."),
    "undefined": ("a defined value", "Avoid 0/0, 1/0, oo - oo, log(0) and the like."),
    "zero": ("a non-zero divisor", "Division by zero is undefined."),
    "big": ("exact numbers of at most about 10000 digits", "Write such numbers as float literals (e.g. 1e3000) or keep them symbolic."),
    "root": ("exact numbers of at most about 300 digits under roots and in function calls", "Use a float literal for such large numbers."),
    "exponent": ("a numeric power with |exponent| <= 1000", "Write such numbers as float literals (e.g. 1e3000) or keep them symbolic."),
    "special": ("an exact argument of {name} with magnitude <= {limit}", "Use a float literal (e.g. 1000.0) to evaluate numerically."),
    "condition": ("a condition (a comparison such as `x > 0`, True/False, or and/or/not of them)", "Compare the expression with something."),
    "bool": ("a number", "True/False are allowed only inside conditions, e.g. the last Piecewise pair `(expr, True)`."),
    "long_float": ("a float literal of at most 1000 characters", "Shorten it."),
    "complex": ("a real number", "Complex literals are not supported; verijac checks real-valued functions."),
    "string": ("a number or an expression", "String literals are not allowed; write the expression itself without quotes."),
    "literal": ("a number", "Only int and float literals are allowed."),
    "underscore": ("a name not starting with an underscore", "Use a plain variable or function name."),
    "nan": ("a defined number", "nan is not allowed in expressions."),
    "function_value": ("a value", "`{name}` is a function: call it, e.g. `{name}(x)`."),
    "unknown_name": ("one of the known names ({known})", "{hint}Declare `{name}` as an input or use a known name."),
    "xor": ("an arithmetic operator", "`^` is bitwise xor in Python: use ** for powers."),
    "operator": ("one of + - * / **", "That operator is not supported."),
    "comparison": ("one of < <= > >= == !=", "That comparison is not supported."),
    "invert": ("+, - or not", "`~` is not supported; use `not` for logical negation."),
    "matrix_power": ("a scalar base", "Powers of arrays are not supported; index the elements first."),
    "callee": ("a plain known function name", "Only functions called by name, e.g. `sin(x)`, are allowed."),
    "unknown_function": ("a known function", "{hint}{register}"),
    "keyword": ("positional arguments only", "Pass the arguments of `{name}` by position."),
    "result": ("a SymPy object", "The function `{name}` must return a SymPy expression."),
    "piece": ("a (value, condition) pair", "Write Piecewise as `Piecewise((a, x < 0), (b, True))`."),
    "subscripted": ("a subscript of a name, e.g. `x[0]`", "Index only named arrays."),
    "not_array": ("an array", "`{name}` is not an array; only array inputs can be indexed."),
    "rank": ("{rank} indices for `{name}` of shape {shape}", "Give one integer index per dimension."),
    "index": ("a non-negative integer literal index", "Write indices as plain numbers, e.g. `x[0, 1]`."),
    "range": ("an index in range 0..{last}", "`{name}` has shape {shape}."),
    "element": ("a scalar array element", "Write nested lists out explicitly."),
    "empty_list": ("a non-empty list", "Arrays must have at least one element."),
    "ragged": ("a rectangular (non-ragged) nested list", "Give every row the same length and nesting."),
}  # fmt: skip


def _bits(value: sympy.Rational) -> int:
    """Size in bits of an exact rational (numerator plus denominator)."""
    return int(value.p).bit_length() + int(value.q).bit_length()


def _coefficient_bits(value: Any) -> int:
    """Size in bits of the exact rational coefficient of `value` (0 when it has none)."""
    if isinstance(value, sympy.Expr):
        coefficient = value.as_coeff_Mul()[0]
        if isinstance(coefficient, sympy.Rational):
            return _bits(coefficient)
    return 0


def _radical_bits(value: Any) -> int:
    """Total size in bits of the exact bases of fractional powers in a product.

    SymPy merges `sqrt(a) * sqrt(b)` into `sqrt(a*b)` and then tries to factor `a*b`, which
    takes minutes for numbers of a few thousand digits, so such bases are kept small.
    """
    if not isinstance(value, sympy.Expr):
        return 0
    return sum(
        _bits(factor.base)
        for factor in sympy.Mul.make_args(value)
        if isinstance(factor, sympy.Pow)
        and isinstance(factor.base, sympy.Rational)
        and not factor.exp.is_integer
    )


def _is_condition(value: Any) -> bool:
    """Whether `value` is a SymPy condition: a relational, true/false, or And/Or/Not of them."""
    return isinstance(value, (Relational, BooleanAtom, BooleanFunction))


def _chain_kind(op: ast.operator) -> str | None:
    """The associative chain an operator belongs to: "add" (+ -), "mul" (* /) or None."""
    if isinstance(op, _ADDITIVE):
        return "add"
    if isinstance(op, _MULTIPLICATIVE):
        return "mul"
    return None


def _clip(text: str, limit: int = 80) -> str:
    """`text`, shortened with "..." to at most `limit` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
