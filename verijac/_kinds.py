"""Result kinds: what a path's result is, one `Kind` record per kind in `KINDS`.

A path declares the kind of result it computes (`AutogradPath.computes`); everything verijac
does with that result — its derivative order and tolerance, its exact value from the
Jacobian and Hessian, the ``atol`` weight and the scale of its bound, which tangent or
cotangent a report shows, how an entry is named — is read from the kind's record here.
Adding a kind is one new `Kind` in `KINDS`:

======================  =================  ===============================================
kind                    result shape       exact reference
======================  =================  ===============================================
``jacobian``            ``(N, m, n)``      ``J``
``jvp``                 ``(N, m)``         ``J @ t``
``vjp``                 ``(N, n)``         ``c @ J``
``vjp_accumulated``     ``(N, n)``         ``2 · c @ J`` (two backward passes accumulate)
``gradient``            ``(N, n)``         ``J[:, 0]`` (scalar output only)
``hessian``             ``(N, m, n, n)``   ``H``
``hvp``                 ``(N, n)``         ``H[:, 0] @ t`` (scalar output only)
``vhp``                 ``(N, n)``         ``t @ H[:, 0]`` (scalar output only)
``chvp``                ``(N, n)``         ``Σ_k c_k H_k @ t`` (second order, any output)
``behaviour``           ``None``           the path asserts a documented behaviour itself
======================  =================  ===============================================

``N`` points, ``n`` input elements (all inputs flattened and concatenated in order), ``m``
output elements (likewise). ``t`` are the tangents ``(N, n)``, ``c`` the cotangents ``(N, m)``.

Importing this module does not import torch: the functions of a kind import it when called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: ``exact(jac, hess, t, c)``: the exact result from the float64 Jacobian ``(N, m, n)``, the
#: Hessian ``(N, m, n, n)`` (``None`` for first-order kinds), tangents ``(N, n)`` and
#: cotangents ``(N, m)``. The arguments stay untyped: one the kind does not use may be ``None``.
Exact = Callable[[Any, Any, Any, Any], "torch.Tensor"]
#: ``weight(t, c)``: the ``atol`` multiplier per point from ``Σ|t_j|`` and ``Σ|c_k|``, each
#: ``(N, 1)``.
Weight = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]
#: ``label(out, inp, rest)``: an entry in the case's terms; ``out(i)`` / ``inp(j)`` name the
#: flat output / input element, ``rest`` is the entry's index without its point.
Label = Callable[[Callable[[int], str], Callable[[int], str], Sequence[int]], str]


@dataclass(frozen=True)
class Kind:
    """One kind of path result and everything that depends on it.

    Attributes:
        name: what paths declare as ``computes``.
        order: derivative order (0: a behaviour, nothing to compare); fixes the tolerance
            factor (`verijac._tolerances.ORDER_FACTOR`) and whether the Hessian is needed.
        shape: the result layout, for documentation: ``"(N, m, n)"``.
        reference: the exact result, for documentation: ``"J @ t"``.
        exact: the exact result (`Exact`); ``None`` for a behaviour.
        plain: whether the result is derivative entries themselves (a Jacobian, gradient or
            Hessian): its bound's scale is ``|expected|`` and its ``atol`` weight 1.
        weight: the ``atol`` multiplier of a result that sums derivative entries (`Weight`);
            ``None`` for plain kinds and behaviours.
        tangent / cotangent: whether the result depends on the tangents / cotangents (a
            mismatch report shows them).
        label: names an entry of the result (`Label`); ``None``: entries are not named.
        symbol: the short name of an entry in tables: ``J[1,2]``, ``jvp[0]``.
        input_axes: the result's axes (counted from the end) that run over input elements.
    """

    name: str
    order: int
    shape: str
    reference: str
    exact: Exact | None
    plain: bool = False
    weight: Weight | None = None
    tangent: bool = False
    cotangent: bool = False
    label: Label | None = None
    symbol: str = ""
    input_axes: tuple[int, ...] = ()

    @property
    def second_order(self) -> bool:
        return self.order == 2

    @property
    def short(self) -> str:
        """`symbol`, or the kind's name."""
        return self.symbol or self.name


def _einsum(spec: str, *operands: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.einsum(spec, *operands)


KINDS: tuple[Kind, ...] = (
    Kind(
        "jacobian",
        order=1,
        shape="(N, m, n)",
        reference="J",
        exact=lambda jac, hess, t, c: jac,
        plain=True,
        label=lambda out, inp, r: f"∂{out(r[0])}/∂{inp(r[1])}",
        symbol="J",
        input_axes=(-1,),
    ),
    Kind(
        "jvp",
        order=1,
        shape="(N, m)",
        reference="J @ t",
        exact=lambda jac, hess, t, c: _einsum("bmn,bn->bm", jac, t),
        weight=lambda t, c: t,
        tangent=True,
        label=lambda out, inp, r: f"(J·t) at {out(r[0])}",
    ),
    Kind(
        "vjp",
        order=1,
        shape="(N, n)",
        reference="c @ J",
        exact=lambda jac, hess, t, c: _einsum("bm,bmn->bn", c, jac),
        weight=lambda t, c: c,
        cotangent=True,
        label=lambda out, inp, r: f"(cᵀ·J) at {inp(r[0])}",
        input_axes=(-1,),
    ),
    Kind(
        "vjp_accumulated",
        order=1,
        shape="(N, n)",
        reference="2 · c @ J (two backward passes accumulate)",
        exact=lambda jac, hess, t, c: 2.0 * _einsum("bm,bmn->bn", c, jac),
        weight=lambda t, c: 2.0 * c,
        cotangent=True,
        label=lambda out, inp, r: f"(cᵀ·J) at {inp(r[0])}",
        input_axes=(-1,),
    ),
    Kind(
        "gradient",
        order=1,
        shape="(N, n)",
        reference="J[:, 0] (scalar output only)",
        exact=lambda jac, hess, t, c: jac[:, 0, :],
        plain=True,
        label=lambda out, inp, r: f"∂{out(0)}/∂{inp(r[0])}",
        symbol="grad",
        input_axes=(-1,),
    ),
    Kind(
        "hessian",
        order=2,
        shape="(N, m, n, n)",
        reference="H",
        exact=lambda jac, hess, t, c: hess,
        plain=True,
        label=lambda out, inp, r: f"∂²{out(r[0])}/∂{inp(r[1])}∂{inp(r[2])}",
        symbol="H",
        input_axes=(-2, -1),
    ),
    Kind(
        "hvp",
        order=2,
        shape="(N, n)",
        reference="H[:, 0] @ t (scalar output only)",
        exact=lambda jac, hess, t, c: _einsum("bij,bj->bi", hess[:, 0], t),
        weight=lambda t, c: t,
        tangent=True,
        label=lambda out, inp, r: f"(hvp) at {inp(r[0])}",
        input_axes=(-1,),
    ),
    Kind(
        "vhp",
        order=2,
        shape="(N, n)",
        reference="t @ H[:, 0] (scalar output only)",
        exact=lambda jac, hess, t, c: _einsum("bi,bij->bj", t, hess[:, 0]),
        weight=lambda t, c: t,
        tangent=True,
        label=lambda out, inp, r: f"(vhp) at {inp(r[0])}",
        input_axes=(-1,),
    ),
    Kind(
        "chvp",
        order=2,
        shape="(N, n)",
        reference="Σ_k c_k H_k @ t (second order, any output)",
        exact=lambda jac, hess, t, c: _einsum("bm,bmij,bj->bi", c, hess, t),
        weight=lambda t, c: c * t,
        tangent=True,
        cotangent=True,
        label=lambda out, inp, r: f"(chvp) at {inp(r[0])}",
        input_axes=(-1,),
    ),
    Kind(
        "behaviour",
        order=0,
        shape="None",
        reference="the path asserts a documented behaviour itself",
        exact=None,
    ),
)

#: Kind name → `Kind`.
BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def get_kind(name: str) -> Kind:
    """The `Kind` called ``name``.

    Raises:
        KeyError: no such kind (paths validate ``computes`` when they are built).
    """
    return BY_NAME[name]


__all__ = ["BY_NAME", "KINDS", "Kind", "get_kind"]
