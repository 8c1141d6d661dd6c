"""The function map: SymPy function classes → torch callables, and user registrations.

Every entry is mathematically the SymPy function on the reals, not a name match: SymPy's
``sinc(x)`` is ``sin(x)/x`` while ``torch.sinc`` is the normalised ``sin(πx)/(πx)``; there is no
``torch.special.gamma``; SymPy's ``Heaviside`` takes its value at 0 as a second argument.
Each callable accepts tensors or Python numbers (numbers become tensors like the other
arguments) and uses no Python control flow on tensor values, so it works under
``torch.func`` transforms and ``torch.compile``.
"""

from __future__ import annotations

import math
from collections import ChainMap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sympy

from ._errors import UnsupportedFunctionError, UsageError


def _torch() -> Any:
    import torch

    return torch


def _like(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Turn Python numbers among ``args`` into tensors matching the first tensor argument."""
    torch = _torch()
    ref = next((a for a in args if isinstance(a, torch.Tensor)), None)
    if ref is None:
        return tuple(torch.as_tensor(float(a), dtype=torch.float64) for a in args)
    return tuple(
        a
        if isinstance(a, torch.Tensor)
        else torch.as_tensor(float(a), dtype=ref.dtype, device=ref.device)
        for a in args
    )


def _unary(name: str) -> Callable[[Any], Any]:
    def call(x: Any) -> Any:
        (x,) = _like((x,))
        return _resolve(name)(x)

    call.__name__ = name.replace(".", "_")
    return call


def _resolve(dotted: str) -> Any:
    obj = _torch()
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _atan2(y: Any, x: Any) -> Any:
    y, x = _like((y, x))
    return _torch().atan2(y, x)


def _maximum(*args: Any) -> Any:
    torch = _torch()
    args = _like(args)
    out = args[0]
    for a in args[1:]:
        out = torch.maximum(out, a)
    return out


def _minimum(*args: Any) -> Any:
    torch = _torch()
    args = _like(args)
    out = args[0]
    for a in args[1:]:
        out = torch.minimum(out, a)
    return out


def _heaviside(x: Any, h0: Any = 0.5) -> Any:
    torch = _torch()
    (x,) = _like((x,))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    at0 = torch.full_like(x, float(h0))
    return torch.where(x > 0, one, torch.where(x < 0, zero, at0))


def _sinc(x: Any) -> Any:
    # SymPy's sinc is the unnormalised sin(x)/x; torch.sinc(t) = sin(πt)/(πt).
    (x,) = _like((x,))
    return _torch().sinc(x / math.pi)


def _gamma(x: Any) -> Any:
    # No torch.special.gamma: |Γ(x)| = exp(lgamma(x)); the sign alternates on (-k-1, -k).
    torch = _torch()
    (x,) = _like((x,))
    sign = torch.where(
        x > 0, torch.ones_like(x), 1.0 - 2.0 * torch.remainder(torch.floor(-x) + 1.0, 2.0)
    )
    return sign.detach() * torch.exp(torch.lgamma(x))


def _polygamma(n: Any, x: Any) -> Any:
    (x,) = _like((x,))
    return _torch().special.polygamma(int(n), x)


def _zeta(s: Any, q: Any = 1.0) -> Any:
    s, q = _like((s, q))
    return _torch().special.zeta(s, q)


#: The highest integer order of Bessel functions built by recurrence from orders 0 and 1.
BESSEL_MAX_ORDER = 6


def _bessel(kind: str) -> Callable[[Any, Any], Any]:
    names = {
        "j": ("special.bessel_j0", "special.bessel_j1"),
        "y": ("special.bessel_y0", "special.bessel_y1"),
        "i": ("special.modified_bessel_i0", "special.modified_bessel_i1"),
        "k": ("special.modified_bessel_k0", "special.modified_bessel_k1"),
    }[kind]

    def call(nu: Any, x: Any) -> Any:
        (x,) = _like((x,))
        order = float(nu)
        if order != int(order) or not 0 <= order <= BESSEL_MAX_ORDER:
            raise UnsupportedFunctionError(
                f"bessel{kind}({order:g}, x): torch has orders 0 and 1, verijac builds integer "
                f"orders up to {BESSEL_MAX_ORDER} by recurrence; register a mapping for "
                f"bessel{kind} with verijac.register_function for other orders"
            )
        if order < 2:
            return _resolve(names[int(order)])(x)
        torch = _torch()
        # The upward recurrences (DLMF 10.6.1, 10.29.1) are 0·∞ at x = 0 and lose digits for
        # |x| < order; J and I use their power series there (DLMF 10.2.2, 10.25.2).
        # SymPy's derivative of an order-n Bessel function involves order n + 1.
        near = (
            torch.abs(x) < 2 * order + 2 if kind in "ji" else torch.zeros_like(x, dtype=torch.bool)
        )
        far_x = torch.where(near, torch.full_like(x, 2 * order + 3), x)
        prev, cur = _resolve(names[0])(far_x), _resolve(names[1])(far_x)
        for n in range(1, int(order)):
            if kind in "jy":
                prev, cur = cur, (2 * n / far_x) * cur - prev
            elif kind == "i":
                prev, cur = cur, prev - (2 * n / far_x) * cur
            else:
                prev, cur = cur, prev + (2 * n / far_x) * cur
        if kind not in "ji":
            return cur
        near_x = torch.where(near, x, torch.zeros_like(x))
        half_sq = (near_x / 2) ** 2
        term = (near_x / 2) ** int(order) / math.factorial(int(order))
        total = term
        sign = -1.0 if kind == "j" else 1.0
        for k in range(1, 40):
            term = term * (sign * half_sq / (k * (k + int(order))))
            total = total + term
        return torch.where(near, total, cur)

    call.__name__ = f"bessel{kind}"
    return call


def _log(x: Any, base: Any = None) -> Any:
    torch = _torch()
    (x,) = _like((x,))
    if base is None:
        return torch.log(x)
    return torch.log(x) / math.log(float(base))


@dataclass(frozen=True)
class Mapping:
    """One entry of the function map: the torch callable and the formula it implements."""

    fn: Callable[..., Any]
    torch: str
    note: str = ""


#: SymPy function class → its torch implementation. Exactly one entry per class.
FUNCTIONS: dict[type, Mapping] = {
    sympy.sin: Mapping(_unary("sin"), "torch.sin"),
    sympy.cos: Mapping(_unary("cos"), "torch.cos"),
    sympy.tan: Mapping(_unary("tan"), "torch.tan"),
    sympy.cot: Mapping(lambda x: 1.0 / _unary("tan")(x), "1 / torch.tan(x)"),
    sympy.sec: Mapping(lambda x: 1.0 / _unary("cos")(x), "1 / torch.cos(x)"),
    sympy.csc: Mapping(lambda x: 1.0 / _unary("sin")(x), "1 / torch.sin(x)"),
    sympy.asin: Mapping(_unary("asin"), "torch.asin"),
    sympy.acos: Mapping(_unary("acos"), "torch.acos"),
    sympy.atan: Mapping(_unary("atan"), "torch.atan"),
    sympy.acot: Mapping(lambda x: _unary("atan")(1.0 / _like((x,))[0]), "torch.atan(1 / x)"),
    sympy.atan2: Mapping(_atan2, "torch.atan2"),
    sympy.sinh: Mapping(_unary("sinh"), "torch.sinh"),
    sympy.cosh: Mapping(_unary("cosh"), "torch.cosh"),
    sympy.tanh: Mapping(_unary("tanh"), "torch.tanh"),
    sympy.coth: Mapping(lambda x: 1.0 / _unary("tanh")(x), "1 / torch.tanh(x)"),
    sympy.sech: Mapping(lambda x: 1.0 / _unary("cosh")(x), "1 / torch.cosh(x)"),
    sympy.csch: Mapping(lambda x: 1.0 / _unary("sinh")(x), "1 / torch.sinh(x)"),
    sympy.asinh: Mapping(_unary("asinh"), "torch.asinh"),
    sympy.acosh: Mapping(_unary("acosh"), "torch.acosh"),
    sympy.atanh: Mapping(_unary("atanh"), "torch.atanh"),
    sympy.acoth: Mapping(lambda x: _unary("atanh")(1.0 / _like((x,))[0]), "torch.atanh(1 / x)"),
    sympy.exp: Mapping(_unary("exp"), "torch.exp"),
    sympy.log: Mapping(_log, "torch.log (a base b divides by log b)"),
    sympy.Abs: Mapping(_unary("abs"), "torch.abs"),
    sympy.sign: Mapping(_unary("sign"), "torch.sign"),
    sympy.floor: Mapping(_unary("floor"), "torch.floor"),
    sympy.ceiling: Mapping(_unary("ceil"), "torch.ceil"),
    sympy.Max: Mapping(_maximum, "torch.maximum (folded over the arguments)"),
    sympy.Min: Mapping(_minimum, "torch.minimum (folded over the arguments)"),
    sympy.Heaviside: Mapping(
        _heaviside, "torch.where(x > 0, 1, where(x < 0, 0, H0))", "zero gradient everywhere"
    ),
    sympy.erf: Mapping(_unary("special.erf"), "torch.special.erf"),
    sympy.erfc: Mapping(_unary("special.erfc"), "torch.special.erfc"),
    sympy.erfinv: Mapping(_unary("special.erfinv"), "torch.special.erfinv"),
    sympy.gamma: Mapping(
        _gamma, "sign · torch.exp(torch.lgamma(x))", "no torch.special.gamma exists"
    ),
    sympy.loggamma: Mapping(_unary("lgamma"), "torch.lgamma", "log|Γ(x)|: equal for x > 0"),
    sympy.polygamma: Mapping(
        _polygamma, "torch.special.polygamma(n, x)", "integer n only; digamma(x) is polygamma(0, x)"
    ),
    sympy.zeta: Mapping(_zeta, "torch.special.zeta(s, q)", "Riemann zeta is q = 1"),
    sympy.besselj: Mapping(
        _bessel("j"), "torch.special.bessel_j0 / bessel_j1", "integer orders ≤ 6 by recurrence"
    ),
    sympy.bessely: Mapping(
        _bessel("y"), "torch.special.bessel_y0 / bessel_y1", "integer orders ≤ 6 by recurrence"
    ),
    sympy.besseli: Mapping(
        _bessel("i"), "torch.special.modified_bessel_i0 / i1", "integer orders ≤ 6 by recurrence"
    ),
    sympy.besselk: Mapping(
        _bessel("k"), "torch.special.modified_bessel_k0 / k1", "integer orders ≤ 6 by recurrence"
    ),
    sympy.sinc: Mapping(_sinc, "torch.sinc(x / π)", "SymPy's sinc is sin(x)/x"),
}

_USER: dict[type, Mapping] = {}
#: The map in force: user registrations layered over `FUNCTIONS`.
ACTIVE: ChainMap[type, Mapping] = ChainMap(_USER, FUNCTIONS)


def register_function(
    function: type, implementation: Callable[..., Any], *, description: str = ""
) -> None:
    """Register (or override) the torch implementation of a SymPy function class.

    The registration reaches code generation and the text parser alike: expression text
    (`verijac.parse`, TOML cases) may then call the function by its class name
    (``LambertW(x)``), and by its lower-case name (``lambertw(x)``) unless another function
    is spelt that way. A registered class's name takes precedence over a built-in function
    spelt the same.

    Args:
        function: a SymPy function class, e.g. ``sympy.LambertW`` or your own
            ``sympy.Function`` subclass (it must define ``fdiff`` for derivatives).
        implementation: a callable taking tensors (or Python numbers for numeric arguments)
            and returning a tensor, without Python control flow on tensor values.
        description: the formula, shown in the coverage table.

    Raises:
        UsageError: ``function`` is not a SymPy function class or ``implementation`` is not
            callable.
    """
    if not (isinstance(function, type) and issubclass(function, sympy.Function)):
        raise UsageError(
            f"register_function expects a SymPy function class such as sympy.LambertW, got "
            f"{function!r}"
        )
    if not callable(implementation):
        raise UsageError(f"implementation must be callable, got {implementation!r}")
    _USER[function] = Mapping(
        implementation, description or getattr(implementation, "__name__", "user")
    )


def unregister_function(function: type) -> None:
    """Remove a user registration from code generation and the parser alike (the built-in
    mapping, if any, applies again)."""
    _USER.pop(function, None)


def registered() -> tuple[type, ...]:
    """The classes registered with `register_function`, oldest first."""
    return tuple(_USER)


# symengine spells some classes differently from SymPy.
_ALIASES = {"lambertw": "LambertW"}


def lookup(name: str, sympy_class: type | None = None) -> Mapping:
    """Find the mapping for a function by SymPy class (or its name, for symengine nodes).

    Raises:
        UnsupportedFunctionError: no mapping exists; the message says how to register one.
    """
    if sympy_class is not None and sympy_class in ACTIVE:
        return ACTIVE[sympy_class]
    # By name only for a node that carries no class (symengine's) or SymPy's own class: a
    # user's class that happens to be called ``erf`` must never get torch's erf.
    own = sympy_class is not None and not str(getattr(sympy_class, "__module__", "")).startswith(
        "sympy."
    )
    for cls in () if own else ACTIVE:
        if cls.__name__ == _ALIASES.get(name, name):
            return ACTIVE[cls]
    spelt = _ALIASES.get(name, name)
    if sympy_class is None or getattr(sympy, spelt, None) is sympy_class:
        spelt = f"sympy.{spelt}"  # else the user's own class, named as they defined it
    raise UnsupportedFunctionError(
        f"no torch mapping for the function {name!r}. Register one with "
        f"verijac.register_function({spelt}, my_torch_impl), where my_torch_impl takes "
        "tensors and returns a tensor; supported: " + ", ".join(sorted(c.__name__ for c in ACTIVE))
    )


def coverage_markdown() -> str:
    """The function map as a Markdown table (docs/functions.md is generated from this)."""
    rows = ["| SymPy | torch implementation | note |", "| --- | --- | --- |"]
    for cls, mapping in sorted(ACTIVE.items(), key=lambda kv: kv[0].__name__.lower()):
        rows.append(f"| `{cls.__name__}` | `{mapping.torch}` | {mapping.note} |")
    return "\n".join(rows) + "\n"
