"""The functions expression text may call: the classes of the function map by name, other
spellings of them, functions built from mapped ones, and `Max`/`Min` built in linear time.

`KNOWN_FUNCTIONS` follows `register_function` / `unregister_function` as they happen; a name
text calls that is not there gets advice on how to register it (`_how_to_register`).
"""

from __future__ import annotations

import keyword
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import sympy

from ._errors import ParseError
from ._functions import ACTIVE, FUNCTIONS, registered


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
