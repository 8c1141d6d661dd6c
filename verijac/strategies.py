"""Hypothesis strategies built from a case's domain: batches of points, tangents, cotangents.

One example is a *batch*. Its first few rows are drawn element by element by Hypothesis
(special values: zero, tiny and large magnitudes, the domain's ends, structured matrices);
the rest are filled in one vectorised draw from a generator seeded by Hypothesis, so a batch
of 10,000 points costs about as much to draw as one of ten. Every row lies inside the
domain, clear of its excluded points and of the zero sets of the case's ``exclude``
expressions (``|g| >= case.margin``), after rounding to the requested dtype.

```python
from hypothesis import given
from verijac import strategies as vst

@given(vst.batches(case, batch_size=64, dtype=torch.float32))
def test_my_op(batch):
    out = my_op(*batch.inputs)
```
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st

from ._errors import UsageError

if TYPE_CHECKING:
    from ._case import Case, Variable
    from ._domain import Interval

#: Batch sizes drawn when ``batch_size=None`` (a single point included).
BATCH_SIZES = (1, 2, 7, 32, 64)
#: How many leading rows of a batch Hypothesis draws element by element.
EXPLICIT_ROWS = 8
#: At most this many elements are drawn one by one per batch (the rest are vectorised).
EXPLICIT_ELEMENTS = 256
#: Kinds of structured values for array inputs (square matrices get all of them).
STRUCTURES = ("identity", "zero", "diagonal", "symmetric", "rank_deficient", "repeated")


@dataclass(frozen=True)
class Profile:
    """How hard `verijac.check` searches: examples (batches) and points per batch."""

    max_examples: int
    batch_size: int
    description: str


#: The verijac profiles. Each is also registered with Hypothesis as ``verijac-<name>``
#: (prefixed so that a project's own ``ci`` profile is never overwritten).
PROFILES: dict[str, Profile] = {
    "ci": Profile(4, 64, "quick: 4 batches of 64 points per case, path, device and dtype"),
    "dev": Profile(20, 256, "default: 20 batches of 256 points"),
    "thorough": Profile(200, 1024, "200 batches of 1024 points"),
}
DEFAULT_PROFILE = "dev"

for _name, _p in PROFILES.items():
    settings.register_profile(
        f"verijac-{_name}",
        max_examples=_p.max_examples,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )


def get_profile(name: str | None) -> Profile:
    """The `Profile` called ``name`` (``None``: `DEFAULT_PROFILE`).

    A name verijac does not define is looked up among Hypothesis profiles, whose
    ``max_examples`` is used with the default batch size.

    Raises:
        UsageError: no such profile.
    """
    name = DEFAULT_PROFILE if name is None else name
    if name in PROFILES:
        return PROFILES[name]
    try:
        hyp = settings.get_profile(name)
    except Exception:
        raise UsageError(
            f"unknown profile {name!r}; expected one of {sorted(PROFILES)} or a registered "
            "Hypothesis profile"
        ) from None
    return Profile(hyp.max_examples, PROFILES[DEFAULT_PROFILE].batch_size, f"hypothesis {name!r}")


@dataclass(frozen=True)
class Batch:
    """One example: points, tangents ``(N, n)`` and cotangents ``(N, m)`` on the CPU.

    Attributes:
        points: input name → tensor ``(N, *shape)``, in the case's input order.
        tangents / cotangents: float64, one row per point.
    """

    points: dict[str, Any]
    tangents: Any
    cotangents: Any

    @property
    def inputs(self) -> tuple[Any, ...]:
        """The points as one tensor per input, in argument order."""
        return tuple(self.points.values())

    @property
    def size(self) -> int:
        return int(next(iter(self.points.values())).shape[0])


# -- helpers ------------------------------------------------------------------------------


def _torch_dtype(dtype: Any) -> Any:
    import torch

    from ._tolerances import dtype_name

    return getattr(torch, dtype_name(dtype))


def _round(values: list[float] | Any, dtype: Any) -> Any:
    import torch

    return torch.as_tensor(values, dtype=torch.float64).to(_torch_dtype(dtype)).to(torch.float64)


def specials(interval: Interval, dtype: Any = None) -> list[float]:
    """Special values of an interval that keep clear of its ends and excluded points.

    Zero, ±1, ±½, tiny magnitudes (``1e-6`` and the dtype's smallest normal), the sampling
    bounds (the domain's ends or ``±SAMPLE_LIMIT``), their midpoint, and values just off each
    excluded point.
    """
    import torch

    tiny = torch.finfo(_torch_dtype(dtype) if dtype is not None else torch.float64).tiny
    lo, hi = interval.sample_bounds()
    cands = [0.0, 1.0, -1.0, 0.5, -0.5, 1e-6, -1e-6, tiny, -tiny, lo, hi, 0.5 * (lo + hi)]
    for p in interval.exclude:
        step = 2 * interval.margin * max(1.0, abs(p))
        cands += [p - step, p + step]
    out: list[float] = []
    for c in cands:
        c = float(_round([c], dtype)[0]) if dtype is not None else c
        if interval.keeps_clear(c) and c not in out:
            out.append(c)
    return out or [0.5 * (lo + hi)]


def _clear_mask(interval: Interval, x: Any) -> Any:
    """Vectorised `Interval.keeps_clear`."""
    lo, hi = interval.sample_bounds()
    ok = (x >= lo) & (x <= hi)
    for p in interval.exclude:
        ok &= (x - p).abs() >= interval.margin * max(1.0, abs(p))
    return ok


_EXCLUDE_FNS: weakref.WeakKeyDictionary[Any, Callable[..., list[Any]] | None] = (
    weakref.WeakKeyDictionary()
)


def _exclude_fn(case: Case) -> Callable[..., list[Any]] | None:
    """The case's ``exclude`` expressions as one batched torch function (cached)."""
    if case not in _EXCLUDE_FNS:
        fn = None
        if case.exclude:
            from ._codegen import compile_program

            variables = [(v.name, v.shape, list(v.symbols)) for v in case.variables]
            fn, _ = compile_program("sympy", variables, [((), [g]) for g in case.exclude])
        _EXCLUDE_FNS[case] = fn
    return _EXCLUDE_FNS[case]


def valid_rows(case: Case, inputs: tuple[Any, ...]) -> Any:
    """Per row of a batch (one float tensor ``(N, *shape)`` per input): whether it is inside
    the domain, clear of excluded points and of the ``exclude`` zero sets."""
    import torch

    n = int(inputs[0].shape[0])
    ok = torch.ones(n, dtype=torch.bool)
    for v, x in zip(case.variables, inputs, strict=True):
        flat = x.detach().to("cpu", torch.float64).reshape(n, -1)
        ok &= _clear_mask(v.domain, flat).all(dim=1)
    fn = _exclude_fn(case)
    if fn is not None:
        args = tuple(x.detach().to("cpu", torch.float64) for x in inputs)
        with torch.no_grad():
            for g in fn(*args):
                g = g.reshape(n)
                ok &= torch.isfinite(g) & (g.abs() >= case.margin)
    return ok


def _structured(kind: str, v: Variable, base: Any) -> Any:
    """Turn ``base`` ``(k, *shape)`` (in-domain values) into structured values of one kind."""
    import torch

    k = base.shape[0]
    x = base.reshape(k, -1)
    if kind == "zero":
        return torch.zeros_like(base)
    if kind == "repeated":
        return x[:, :1].expand_as(x).reshape(base.shape).clone()
    if len(v.shape) < 2:
        if kind == "identity":  # one-hot for vectors
            out = torch.zeros_like(x)
            out[:, 0] = 1.0
            return out.reshape(base.shape)
        return base
    r, c = v.shape[-2], v.shape[-1]
    mat = base.reshape(k, -1, r, c)
    if kind == "rank_deficient":  # every row equals the first: rank <= 1
        return mat[:, :, :1, :].expand_as(mat).reshape(base.shape).clone()
    if r != c:
        return base
    eye = torch.eye(r, dtype=base.dtype)
    if kind == "identity":
        return eye.expand_as(mat).reshape(base.shape).clone()
    if kind == "diagonal":
        return (mat * eye).reshape(base.shape)
    if kind == "symmetric":
        return (0.5 * (mat + mat.transpose(-1, -2))).reshape(base.shape)
    return base


def _fill(v: Variable, k: int, gen: Any, dtype: Any) -> Any:
    """``k`` vectorised rows for input ``v``: uniform, log-magnitude, special and structured."""
    import torch

    lo, hi = v.domain.sample_bounds()
    size = v.size
    u = torch.rand(k, size, generator=gen, dtype=torch.float64)
    x = lo + (hi - lo) * u
    big = max(abs(lo), abs(hi), 1e-6)
    mags = 10.0 ** (
        math.log10(1e-6)
        + (math.log10(big) - math.log10(1e-6))
        * torch.rand(k, size, generator=gen, dtype=torch.float64)
    )
    signs = torch.where(torch.rand(k, size, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    logx = mags * signs
    logx = torch.where((logx >= lo) & (logx <= hi), logx, x)
    spec = torch.tensor(specials(v.domain, dtype), dtype=torch.float64)
    sx = spec[torch.randint(len(spec), (k, size), generator=gen)]
    choice = torch.rand(k, size, generator=gen)
    out = torch.where(choice < 0.6, x, torch.where(choice < 0.8, logx, sx)).reshape(k, *v.shape)
    if v.shape and k:
        kinds = torch.randint(len(STRUCTURES) * 3, (k,), generator=gen)
        for i, kind in enumerate(STRUCTURES):
            rows = (kinds == i).nonzero().flatten()
            if len(rows):
                out[rows] = _structured(kind, v, out[rows])
    return out


def _element(interval: Interval, dtype: Any) -> st.SearchStrategy[float]:
    lo, hi = interval.sample_bounds()
    return st.one_of(
        st.sampled_from(specials(interval, dtype)),
        st.floats(lo, hi, allow_nan=False, allow_infinity=False),
    )


def _batch_size(batch_size: int | None) -> st.SearchStrategy[int]:
    if batch_size is None:
        return st.sampled_from(BATCH_SIZES)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be an int >= 1 or None, got batch_size={batch_size!r}")
    return st.just(batch_size)


@st.composite
def _points(
    draw: st.DrawFn, case: Case, batch_size: int | None, dtype: Any, salt: int = 0
) -> dict[str, Any]:
    import torch

    n = draw(_batch_size(batch_size))
    k = min(n, EXPLICIT_ROWS, max(1, EXPLICIT_ELEMENTS // max(1, case.n_in)))
    explicit = []
    for v in case.variables:
        rows = [
            draw(st.lists(_element(v.domain, dtype), min_size=v.size, max_size=v.size))
            for _ in range(k)
        ]
        t = torch.tensor(rows, dtype=torch.float64).reshape(k, *v.shape)
        if v.shape:
            kinds = draw(st.lists(st.sampled_from((None, *STRUCTURES)), min_size=k, max_size=k))
            for i, kind in enumerate(kinds):
                if kind is not None:
                    t[i : i + 1] = _structured(kind, v, t[i : i + 1])
        explicit.append(t)
    seed = draw(st.integers(0, 2**63 - 1))
    gen = torch.Generator().manual_seed(_mix(seed, salt))
    tdt = _torch_dtype(dtype)

    def clean(parts: list[Any]) -> list[Any]:
        parts = [_round(p, tdt).reshape(p.shape) for p in parts]
        keep = valid_rows(case, tuple(parts))
        return [p[keep] for p in parts]

    batch = clean(explicit)
    for _ in range(4):
        missing = n - int(batch[0].shape[0])
        if missing <= 0:
            break
        extra = clean([_fill(v, missing, gen, tdt) for v in case.variables])
        batch = [torch.cat([b, e]) for b, e in zip(batch, extra, strict=True)]
    if int(batch[0].shape[0]) == 0:
        batch = clean(_probe_rows(case))
    return {v.name: b[:n].to(tdt) for v, b in zip(case.variables, batch, strict=True)}


def _probe_rows(case: Case) -> list[Any]:
    import torch

    from ._validate import probe_points

    pts = probe_points(case, 1)
    return [
        torch.tensor([[pt[s] for s in v.symbols] for pt in pts], dtype=torch.float64).reshape(
            len(pts), *v.shape
        )
        for v in case.variables
    ]


def points(
    case: Case, *, batch_size: int | None = None, dtype: Any = "float64", seed: int = 0
) -> st.SearchStrategy[dict[str, Any]]:
    """Batches of points inside ``case``'s domain.

    Args:
        case: the `verijac.Case`.
        batch_size: points per example; ``None`` draws one of `BATCH_SIZES` (1 included).
        dtype: torch dtype (or name) of the tensors; points are rounded to it and then
            checked against the domain again.
        seed: mixed into the vectorised draws, so that runs with different seeds differ even
            in Hypothesis's first (simplest) example.

    Returns:
        A strategy of ``{input name: tensor (N, *shape)}`` on the CPU, in argument order.

    Raises:
        UsageError: ``batch_size`` or ``dtype`` is invalid.
    """
    _check_case(case)
    _torch_dtype(dtype)
    _batch_size(batch_size)
    return _points(case, batch_size, dtype, seed)


def _vectors(width: int, batch_size: int, dtype: Any, salt: int = 0) -> st.SearchStrategy[Any]:
    import torch

    tdt = _torch_dtype(dtype)

    def build(args: tuple[int, int]) -> Any:
        seed, basis = args
        gen = torch.Generator().manual_seed(_mix(seed, salt))
        out = torch.randn(batch_size, width, generator=gen, dtype=torch.float64)
        if basis >= 0 and width:
            out[0] = 0.0
            out[0, basis % width] = 1.0  # a basis vector picks one Jacobian column/row exactly
        return out.to(tdt)

    return st.tuples(st.integers(0, 2**63 - 1), st.integers(-1, max(0, width - 1))).map(build)


def tangents(
    case: Case, *, batch_size: int, dtype: Any = "float64", seed: int = 0
) -> st.SearchStrategy[Any]:
    """Tangents ``(batch_size, case.n_in)``: standard normal rows, the first sometimes a basis vector."""
    _check_case(case)
    _batch_size(batch_size)
    return _vectors(case.n_in, batch_size, dtype, seed)


def cotangents(
    case: Case, *, batch_size: int, dtype: Any = "float64", seed: int = 0
) -> st.SearchStrategy[Any]:
    """Cotangents ``(batch_size, case.n_out)``, drawn like `tangents`."""
    _check_case(case)
    _batch_size(batch_size)
    return _vectors(case.n_out, batch_size, dtype, seed + 2)


@st.composite
def _batches(
    draw: st.DrawFn, case: Case, batch_size: int | None, dtype: Any, salt: int = 0
) -> Batch:
    pts = draw(_points(case, batch_size, dtype, salt))
    n = int(next(iter(pts.values())).shape[0])
    t = draw(_vectors(case.n_in, n, "float64", salt + 1))
    c = draw(_vectors(case.n_out, n, "float64", salt + 2))
    return Batch(pts, t, c)


def batches(
    case: Case, *, batch_size: int | None = None, dtype: Any = "float64", seed: int = 0
) -> st.SearchStrategy[Batch]:
    """`Batch`es: points (as `points`) with float64 tangents and cotangents of the same size."""
    _check_case(case)
    _torch_dtype(dtype)
    _batch_size(batch_size)
    return _batches(case, batch_size, dtype, seed)


def _mix(seed: int, salt: int) -> int:
    if not salt:
        return seed
    import hashlib

    digest = hashlib.sha256(f"{seed}/{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _check_case(case: Any) -> None:
    from ._case import Case

    if not isinstance(case, Case):
        raise UsageError(f"expected a verijac.Case, got case={case!r}; see verijac.get_case")


__all__ = [
    "BATCH_SIZES",
    "PROFILES",
    "STRUCTURES",
    "Batch",
    "Profile",
    "batches",
    "cotangents",
    "get_profile",
    "points",
    "specials",
    "tangents",
    "valid_rows",
]
