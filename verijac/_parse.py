"""Safe parsing of untrusted expression text into SymPy objects.

The text is never executed: it is parsed with `ast.parse(..., mode="eval")` and the tree is
walked with an explicit whitelist of node types, building SymPy objects directly. `eval`,
`exec`, `sympify` and `parse_expr` are never called on the text.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
import operator
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn

import sympy
from sympy.core.relational import Relational
from sympy.logic.boolalg import BooleanAtom, BooleanFunction
from sympy.matrices import MatrixBase
from sympy.tensor.array import NDimArray

from verijac._errors import ParseError
from verijac._functions import ACTIVE, FUNCTIONS, registered

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
_MAX_EXPONENT = 1000  # largest |exponent| of a power whose base and exponent are both numbers
_MAX_BITS = 33_220  # about 10_000 decimal digits: largest exact rational built
_MAX_ROOT_BITS = 1024  # largest exact rational taken to a fractional power or passed to a function
_SPECIAL_ARG_LIMITS = {
    "gamma": 1000, "loggamma": 1000, "lgamma": 1000, "digamma": 1000, "polygamma": 100, "zeta": 100,
}  # fmt: skip


def _hypot(x: Any, y: Any) -> Any:
    """`hypot(x, y)` as `sqrt(x**2 + y**2)`."""
    return sympy.sqrt(x**2 + y**2)


def _sigmoid(x: Any) -> Any:
    """`sigmoid(x)` as `1/(1 + exp(-x))`."""
    return 1 / (1 + sympy.exp(-x))


def _softplus(x: Any) -> Any:
    """`softplus(x)` as `log(1 + exp(x))`."""
    return sympy.log(1 + sympy.exp(x))


def _expm1(x: Any) -> Any:
    """`expm1(x)` as `exp(x) - 1`."""
    return sympy.exp(x) - 1


def _log1p(x: Any) -> Any:
    """`log1p(x)` as `log(1 + x)`."""
    return sympy.log(1 + x)


def _logsumexp(*xs: Any) -> Any:
    """`logsumexp(x1, ..., xn)` as `log(exp(x1) + ... + exp(xn))`."""
    if not xs:
        raise TypeError("logsumexp() takes at least 1 argument (0 given)")
    return sympy.log(sympy.Add(*[sympy.exp(x) for x in xs]))


MAX_MINMAX_ARGS = 16
"""Most arguments one `Max`/`Min` in text may take, counting those of nested ones it absorbs.

SymPy compares every pair of arguments whenever it builds a `Max`, and code generation and
differentiation rebuild it many times: the Jacobian of a 32-argument `Max` took minutes."""
_EVALUATED_MINMAX_ARGS = 8  # up to this many arguments, SymPy's own (quadratic) simplification


def _minmax(cls: type[sympy.Max] | type[sympy.Min], *xs: Any) -> Any:
    """`Max`/`Min` with a bounded number of arguments, built in time linear in their count.

    SymPy compares every pair of arguments when it builds `Max(x0, …, xn)` (21 s for 100
    arguments). Beyond a few arguments, exact duplicates are dropped and the numeric arguments
    are folded into one, and the rest is kept unevaluated: the same function, built at once.
    """
    if not xs:
        raise TypeError(f"{cls.__name__}() takes at least 1 argument (0 given)")
    # SymPy flattens Max(Max(a, b), c) into Max(a, b, c): count what it would flatten.
    count = sum(len(x.args) if isinstance(x, cls) else 1 for x in xs)
    if count > MAX_MINMAX_ARGS:
        raise ParseError(
            f"expected at most {MAX_MINMAX_ARGS} arguments of {cls.__name__} (nested "
            f"{cls.__name__} calls counted together), got {count}. SymPy's {cls.__name__} "
            "costs time quadratic in its arguments at every rebuild; write the reduction "
            "over fewer elements, or build the case in Python."
        )
    if len(xs) <= _EVALUATED_MINMAX_ARGS:
        return cls(*xs)
    args = list(xs)
    if not all(isinstance(a, sympy.Expr) for a in args):
        return cls(*args)  # let SymPy report the wrong argument
    numbers = [a for a in args if a.is_number]
    rest = list(dict.fromkeys(a for a in args if not a.is_number))
    if numbers:
        rest.append(cls(*numbers))
    if len(rest) == 1:
        return rest[0]
    if len(rest) <= _EVALUATED_MINMAX_ARGS:
        return cls(*rest)
    return cls(*rest, evaluate=False)


def _max(*xs: Any) -> Any:
    """`Max(x1, ..., xn)`, built in linear time (see `_minmax`)."""
    return _minmax(sympy.Max, *xs)


def _min(*xs: Any) -> Any:
    """`Min(x1, ..., xn)`, built in linear time (see `_minmax`)."""
    return _minmax(sympy.Min, *xs)


_SPELLINGS: dict[str, Callable[..., Any]] = {
    "sqrt": sympy.sqrt, "cbrt": sympy.cbrt, "digamma": sympy.digamma, "lgamma": sympy.loggamma,
    "Max": _max, "Min": _min, "max": _max, "min": _min, "Piecewise": sympy.Piecewise,
    "hypot": _hypot, "sigmoid": _sigmoid, "softplus": _softplus, "expm1": _expm1,
    "log1p": _log1p, "logsumexp": _logsumexp,
}  # fmt: skip
"""Names text may call beyond the classes of the function map: other spellings, functions
built from mapped ones, and `Max`/`Min` with a bounded number of arguments."""


def _callable_name(name: str) -> bool:
    """Whether text can call a function by `name`."""
    return name.isidentifier() and not name.startswith("_") and not keyword.iskeyword(name)


def _function_table(user: tuple[type, ...]) -> dict[str, Callable[..., Any]]:
    """Every function text may call, by name: the function map's classes and `_SPELLINGS`.

    A class is called by its class name, and by its lower-case name when no other function
    has that name and no other class has the same lower-case name. A class registered by the
    user takes its name over a built-in function or spelling of the same name (the user asked
    for it); overriding a built-in class's torch implementation does not change its names.
    """
    added = [cls for cls in user if cls not in FUNCTIONS and _callable_name(cls.__name__)]
    table: dict[str, Callable[..., Any]] = {cls.__name__: cls for cls in FUNCTIONS}
    table.update(_SPELLINGS)
    table.update({cls.__name__: cls for cls in added})
    classes = [*FUNCTIONS, *added]
    lower = Counter(cls.__name__.lower() for cls in classes)
    for cls in classes:
        alias = cls.__name__.lower()
        if lower[alias] == 1 and alias not in table:
            table[alias] = cls
    return table


def _how_to_register(name: str, known: Mapping[str, Any]) -> str:
    """Advice that makes text calling `name` work: register the SymPy class spelt `name`
    (up to case) if SymPy has one, else a class of the user's own."""
    lowered = name.lower()
    spellings = [name, *(attr for attr in dir(sympy) if attr.lower() == lowered)]
    for attr in spellings:
        cls = getattr(sympy, attr, None)
        if (
            isinstance(cls, type)
            and issubclass(cls, sympy.Function)
            and cls is not sympy.Function
            and cls not in ACTIVE
        ):
            also = f" (or `{lowered}(...)`)" if lowered not in known and lowered != attr else ""
            return (
                f"SymPy has `{attr}`: register its torch implementation with "
                f"`verijac.register_function(sympy.{attr}, torch_impl)`, and text can call "
                f"`{attr}(...)`{also}."
            )
    return (
        f"To add a function, define a `sympy.Function` subclass `{name}` (with `fdiff` for "
        f"its derivative) and register it with `verijac.register_function({name}, "
        "torch_impl)`: text can then call it by its class name; `verijac.parse` also takes "
        "`functions={name: fn}`."
    )


class _KnownFunctions(Mapping[str, Callable[..., Any]]):
    """`_function_table` for the registrations in force, rebuilt when they change, so that
    `register_function` and `unregister_function` take effect on the next parse."""

    def __init__(self) -> None:
        self._built: tuple[tuple[type, ...] | None, dict[str, Callable[..., Any]]] = (None, {})

    def _table(self) -> dict[str, Callable[..., Any]]:
        user = registered()
        built = self._built  # one read: another thread may replace it meanwhile
        if built[0] != user:
            built = (user, _function_table(user))
            self._built = built
        return built[1]

    def __getitem__(self, name: str) -> Callable[..., Any]:
        return self._table()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


KNOWN_FUNCTIONS: Mapping[str, Callable[..., Any]] = _KnownFunctions()
"""Function names `parse` understands, mapped to callables that build SymPy expressions: the
classes of the function map (`verijac._functions`, with `register_function`'s) and
`_SPELLINGS`. It follows registrations as they happen."""

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
    if isinstance(op, (ast.Add, ast.Sub)):
        return "add"
    if isinstance(op, (ast.Mult, ast.Div)):
        return "mul"
    return None


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


def _clip(text: str, limit: int = 80) -> str:
    """`text`, shortened with "..." to at most `limit` characters."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
