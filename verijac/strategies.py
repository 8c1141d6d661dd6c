"""Hypothesis strategies built from a case's domain: batches of points, tangents, cotangents.

One example is a *batch*. Its even rows (row 0 included, at least half of every batch) are
*generic*: uniform in the domain, where a wrong derivative is almost never right by chance.
Of its odd rows, the first few are drawn element by element by Hypothesis (special values:
zero, tiny and large magnitudes, the domain's ends, structured matrices); the rest are
filled in one vectorised draw from a generator seeded by Hypothesis, so a batch of 10,000
points costs little more to draw than one of ten. That bulk's first `MIXED_ROWS` rows mix the
same kinds of values per element (a fifth special values, a fifth log-uniform magnitudes,
structured matrices in a third of the rows); any rows beyond are uniform. Every row lies
inside the domain, clear of its excluded points and of the zero sets of the case's ``exclude``
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

import functools
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st

from ._errors import UsageError
from ._tolerances import dtype_name

if TYPE_CHECKING:
    import torch

    from ._case import Case, Variable
    from ._domain import Interval

#: Batch sizes drawn when ``batch_size=None`` (a single point included).
BATCH_SIZES = (1, 2, 7, 32, 64)
#: How many leading rows of a batch Hypothesis draws element by element.
EXPLICIT_ROWS = 4
#: At most this many elements are drawn one by one per batch (the rest are vectorised).
EXPLICIT_ELEMENTS = 8
#: Rows of a bulk draw that mix kinds of values (special, log-uniform, structured); the rest
#: of a larger batch is uniform.
MIXED_ROWS = 1024
#: Kinds of structured values for array inputs (square matrices get all of them).
STRUCTURES = ("identity", "zero", "diagonal", "symmetric", "rank_deficient", "repeated")


@dataclass(frozen=True)
class Profile:
    """How hard `verijac.check` searches.

    Attributes:
        max_examples: batches per case × device × dtype.
        batch_size: points per batch (every batched path sees all of them).
        unbatched_points: points a path that runs point by point (``batched=False``) sees per
            case × device × dtype: the first few points of each batch until it has this many.
            Such a path costs a Python-level call per point, and it exercises the same torch
            machinery at every point, so a few points say what a thousand would.
        description: one line for listings.
        costly_points: points a second-order path or a path that traces the function at
            every call sees per case × device × dtype (fewer for the widest cases; see
            `verijac._evaluate._point_cap`): the first chunks of the drawn batches.
        pieces: the sizes the first chunk is cut into for batched paths, besides the rest
            (`verijac._evaluate._pieces`: a defect that depends on the batch size shows
            against the same truth); ``None``: one row, and 2 and 7 rows too from 8 batches
            on. Each piece costs every batched path one more call.
    """

    max_examples: int
    batch_size: int
    description: str
    unbatched_points: int = 16
    costly_points: int = 1024
    pieces: tuple[int, ...] | None = None


#: The verijac profiles. Each is also registered with Hypothesis as ``verijac-<name>``
#: (prefixed so that a project's own ``ci`` profile is never overwritten).
PROFILES: dict[str, Profile] = {
    # ci checks each chunk in one call per path: cutting one row off costs every batched path
    # a second call, 28 s of a 152 s run (docs/check.md, "How a check runs").
    "ci": Profile(
        4,
        64,
        "quick: 4 batches of 64 points (8 for per-point paths), one call per path",
        8,
        256,
        pieces=(),
    ),
    "dev": Profile(
        20,
        256,
        "default: 20 batches of 256 points (24 for per-point paths, 512 for second-order "
        "and tracing paths)",
        24,
        512,
    ),
    "thorough": Profile(
        200,
        1024,
        "200 batches of 1024 points (400 for per-point paths, 8192 for second-order and "
        "tracing paths)",
        400,
        8192,
    ),
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

    points: dict[str, torch.Tensor]
    tangents: torch.Tensor
    cotangents: torch.Tensor

    @property
    def inputs(self) -> tuple[torch.Tensor, ...]:
        """The points as one tensor per input, in argument order."""
        return tuple(self.points.values())

    @property
    def size(self) -> int:
        return int(next(iter(self.points.values())).shape[0])


# -- helpers ------------------------------------------------------------------------------


def _torch_dtype(dtype: Any) -> torch.dtype:
    import torch

    return getattr(torch, dtype_name(dtype))


def _round(values: list[float] | torch.Tensor, dtype: Any) -> torch.Tensor:
    import torch

    return torch.as_tensor(values, dtype=torch.float64).to(_torch_dtype(dtype)).to(torch.float64)


def specials(interval: Interval, dtype: Any = None) -> list[float]:
    """Special values of an interval that keep clear of its ends and excluded points.

    Zero, ±1, ±½, tiny magnitudes (``1e-6`` and the dtype's smallest normal), the sampling
    bounds (the domain's ends or ``±SAMPLE_LIMIT``), their midpoint, and values just off each
    excluded point. Cached per interval and dtype.
    """
    return list(_specials(interval, None if dtype is None else dtype_name(dtype)))


@functools.lru_cache(maxsize=1024)
def _specials(interval: Interval, dtype: str | None) -> tuple[float, ...]:
    import torch

    tiny = torch.finfo(_torch_dtype(dtype) if dtype is not None else torch.float64).tiny
    lo, hi = interval.sample_bounds()
    cands = [0.0, 1.0, -1.0, 0.5, -0.5, 1e-6, -1e-6, tiny, -tiny, lo, hi, 0.5 * (lo + hi)]
    for p in interval.exclude:
        step = 2 * interval.margin * max(1.0, abs(p))
        cands += [p - step, p + step]
    if dtype is not None:
        cands = _round(cands, dtype).tolist()
    out: list[float] = []
    for c in cands:
        if interval.keeps_clear(c) and c not in out:
            out.append(c)
    return tuple(out or [0.5 * (lo + hi)])


@dataclass(frozen=True)
class _Columns:
    """A case's domain per input element (one column per element of the flattened inputs),
    so that sampling and the domain filter are a few tensor operations for all inputs at once.

    Attributes:
        lo / hi: sampling bounds ``(n_in,)``; big: the largest magnitude to sample per column.
        exclude / clearance: excluded points and the distance to keep from them
            ``(n_in, e)``, padded with NaN / 0 (``None`` when no input excludes a point).
        specials: special values per column ``(n_in, s)``, padded by repetition; counts: how
            many are real per column.
        uscale / log_low / log_span: ``(hi - lo) / 0.6``, ``log 1e-6`` and
            ``log big - log 1e-6``, the constants of `_fill`'s kinds of values.
    """

    lo: torch.Tensor
    hi: torch.Tensor
    big: torch.Tensor
    exclude: torch.Tensor | None
    clearance: Any  # a tensor exactly when `exclude` is one (mypy cannot tie the two)
    specials: torch.Tensor
    counts: torch.Tensor
    uscale: torch.Tensor
    log_low: torch.Tensor
    log_span: torch.Tensor


#: The smallest magnitude the log-uniform kind of value draws.
LOG_LOW = 1e-6

_COLUMNS: dict[tuple[Any, str], _Columns] = {}


def _columns(case: Case, dtype: str) -> _Columns:
    import torch

    key = (tuple(v.domain for v in case.variables for _ in range(v.size)), dtype)
    cached = _COLUMNS.get(key)
    if cached is not None:
        return cached
    intervals = key[0]
    bounds = [iv.sample_bounds() for iv in intervals]
    lo = torch.tensor([b[0] for b in bounds], dtype=torch.float64)
    hi = torch.tensor([b[1] for b in bounds], dtype=torch.float64)
    big = torch.maximum(
        torch.maximum(lo.abs(), hi.abs()), torch.tensor(LOG_LOW, dtype=torch.float64)
    )
    n_ex = max(len(iv.exclude) for iv in intervals)
    exclude = clearance = None
    if n_ex:
        exclude = torch.full((len(intervals), n_ex), math.nan, dtype=torch.float64)
        clearance = torch.zeros((len(intervals), n_ex), dtype=torch.float64)
        for i, iv in enumerate(intervals):
            for j, p in enumerate(iv.exclude):
                exclude[i, j] = p
                clearance[i, j] = iv.margin * max(1.0, abs(p))
    spec = [_specials(iv, dtype) for iv in intervals]
    width = max(len(sp) for sp in spec)
    table = torch.tensor(
        [[sp[j % len(sp)] for j in range(width)] for sp in spec], dtype=torch.float64
    )
    counts = torch.tensor([len(sp) for sp in spec], dtype=torch.float64)
    if len(_COLUMNS) > 4096:
        _COLUMNS.clear()
    uscale = (hi - lo) / 0.6
    log_low = torch.full_like(lo, math.log(LOG_LOW))
    log_span = big.log() - log_low
    found = _Columns(lo, hi, big, exclude, clearance, table, counts, uscale, log_low, log_span)
    _COLUMNS[key] = found
    return found


def _clear_rows(cols: _Columns, x: torch.Tensor) -> torch.Tensor | None:
    """Per row of ``x`` ``(k, n_in)`` (float64): inside the sampling bounds and clear of every
    excluded point, in every column; ``None`` when every row is (found with two reductions
    per column, without a pass per row, when no input excludes a point)."""
    import torch

    if cols.exclude is None and x.numel():
        # NaN propagates, and fails both tests. (Not torch.aminmax: 4x slower on wide rows.)
        least, most = x.amin(dim=0), x.amax(dim=0)
        if bool(((least >= cols.lo) & (most <= cols.hi)).all()):
            return None
    ok = (x >= cols.lo) & (x <= cols.hi)
    if cols.exclude is not None:
        far = ((x.unsqueeze(-1) - cols.exclude).abs() >= cols.clearance) | torch.isnan(cols.exclude)
        ok &= far.all(dim=-1)
    return ok.all(dim=1)


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


def valid_rows(case: Case, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Per row of a batch (one float tensor ``(N, *shape)`` per input): whether it is inside
    the domain, clear of excluded points and of the ``exclude`` zero sets."""
    import torch

    n = int(inputs[0].shape[0])
    args = tuple(x.detach().to("cpu", torch.float64) for x in inputs)
    flat = torch.cat([x.reshape(n, -1) for x in args], dim=1)
    ok = _valid(case, flat, args)
    return torch.ones(n, dtype=torch.bool) if ok is None else ok


def _valid(case: Case, flat: torch.Tensor, args: tuple[torch.Tensor, ...]) -> torch.Tensor | None:
    """`valid_rows` on the flattened batch; ``None`` when every row is valid."""
    import torch

    ok = _clear_rows(_columns(case, "float64"), flat)
    fn = _exclude_fn(case)
    if fn is not None:
        n = int(flat.shape[0])
        with torch.no_grad():
            for g in fn(*args):
                g = g.reshape(n)
                far = torch.isfinite(g) & (g.abs() >= case.margin)
                ok = far if ok is None else ok & far
    return ok


def _structured(kind: str, v: Variable, base: torch.Tensor) -> torch.Tensor:
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


def _fill(case: Case, k: int, gen: torch.Generator, dtype: str) -> torch.Tensor:
    """``k`` vectorised rows ``(k, n_in)`` for every input at once.

    The first `MIXED_ROWS` rows mix kinds of values per element: uniform (60 %), log-uniform
    magnitude (20 %) or a special value (20 %), and array inputs get structured values
    (`STRUCTURES`) in a third of them. Rows beyond those are uniform: a batch that large
    already holds each special value many times per input, and plain uniform rows cost two
    passes instead of twenty.
    """
    import torch

    cols = _columns(case, dtype)
    u = torch.rand(k, case.n_in, generator=gen, dtype=torch.float64)
    mixed = min(k, MIXED_ROWS)
    if k == mixed:
        out = _mixed_kinds(cols, u)
    else:
        out = torch.addcmul(cols.lo, u, cols.uscale, value=0.6)
        out[:mixed] = _mixed_kinds(cols, u[:mixed])
    arrays = [(i, v) for i, v in enumerate(case.variables) if v.shape]
    if arrays and mixed:
        kinds = torch.randint(len(STRUCTURES) * 3, (len(arrays), mixed), generator=gen)
        offsets = [0]
        for v in case.variables:
            offsets.append(offsets[-1] + v.size)
        for (i, v), row_kinds in zip(arrays, kinds, strict=True):
            block = out[:mixed, offsets[i] : offsets[i + 1]].reshape(mixed, *v.shape)
            for j, kind in enumerate(STRUCTURES):
                rows = (row_kinds == j).nonzero().flatten()
                if len(rows):
                    block[rows] = _structured(kind, v, block[rows])
            out[:mixed, offsets[i] : offsets[i + 1]] = block.reshape(mixed, v.size)
    return out


def _mixed_kinds(cols: _Columns, u: torch.Tensor) -> torch.Tensor:
    """Per element of ``u`` (uniforms in [0, 1), consumed): a uniform value in [lo, hi] for
    u < 0.6, a log-uniform magnitude for u < 0.8, else a special value of its column.

    One uniform per element picks the kind and, rescaled, the value itself: the generator's
    cost dominates at large batches, and rescaling keeps ~52 random bits. Each step is one
    pass over the rows, in place where it can be.
    """
    import torch

    out = torch.addcmul(cols.lo, u, cols.uscale)  # u in [0, 0.6): uniform in [lo, hi]
    w = u.mul_(10.0).sub_(6.0)  # u in [0.6, 0.8) → w in [0, 2); u in [0.8, 1) → w in [2, 4)
    # Log-uniform magnitude in [1e-6, big], negative for w < 1; one outside [lo, hi] is
    # replaced by a uniform value in [lo, hi].
    f = w.frac()
    mags = torch.addcmul(cols.log_low, cols.log_span, f).exp_()
    logx = torch.where(w < 1.0, mags.neg(), mags)
    inside = (logx >= cols.lo) & (logx <= cols.hi)
    logx = torch.where(inside, logx, torch.addcmul(cols.lo, f, cols.uscale, value=0.6))
    pick = (w - 2.0).mul_(0.5 * cols.counts).long().clamp_(0, cols.specials.shape[1] - 1)
    special = cols.specials.gather(1, pick.T).T
    return torch.where(w < 0.0, out, torch.where(w < 2.0, logx, special))


@functools.lru_cache(maxsize=1024)
def _element(interval: Interval, dtype: str) -> st.SearchStrategy[float]:
    lo, hi = interval.sample_bounds()
    return st.one_of(
        st.sampled_from(_specials(interval, dtype)),
        st.floats(lo, hi, allow_nan=False, allow_infinity=False),
    )


@functools.lru_cache(maxsize=64, typed=True)  # typed: True must not hit the entry for 1
def _batch_size(batch_size: int | None) -> st.SearchStrategy[int]:
    if batch_size is None:
        return st.sampled_from(BATCH_SIZES)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be an int >= 1 or None, got batch_size={batch_size!r}")
    return st.just(batch_size)


_SEED = st.integers(0, 2**63 - 1)


@functools.lru_cache(maxsize=256)
def _explicit(case: Case, dtype: str, k: int) -> st.SearchStrategy[Any]:
    """The element-by-element rows: per input ``k`` rows of values and of structure kinds.

    Built once per case, dtype and row count: Hypothesis validates a strategy the first time
    it draws from it, which would otherwise happen at every example.
    """
    values = st.tuples(
        *(
            st.lists(_element(v.domain, dtype), min_size=k * v.size, max_size=k * v.size)
            for v in case.variables
        )
    )
    kind = st.sampled_from((None, *STRUCTURES))
    kinds = st.tuples(
        *(
            st.lists(kind, min_size=k, max_size=k) if v.shape else st.just([None] * k)
            for v in case.variables
        )
    )
    return st.tuples(values, kinds)


@st.composite
def _points(
    draw: st.DrawFn, case: Case, batch_size: int | None, dtype: Any, salt: int = 0
) -> dict[str, Any]:
    import torch

    n = draw(_batch_size(batch_size))
    dname = dtype_name(dtype)
    tdt = _torch_dtype(dname)
    # At least half the rows, row 0 among them, are generic: uniform in the domain. Special
    # values are where wrong derivatives often happen to be right (0 for x·sin x), so they
    # may never fill a batch, however small.
    n_generic = generic_rows(n)
    n_other = n - n_generic
    k = min(n_other, EXPLICIT_ROWS, max(1, EXPLICIT_ELEMENTS // max(1, case.n_in)))
    values, kinds = draw(_explicit(case, dname, k))
    explicit = []
    for v, flat, row_kinds in zip(case.variables, values, kinds, strict=True):
        t = torch.tensor(flat, dtype=torch.float64).reshape(k, *v.shape)
        for i, kind in enumerate(row_kinds):
            if kind is not None:
                t[i : i + 1] = _structured(kind, v, t[i : i + 1])
        explicit.append(t.reshape(k, v.size))
    # Hypothesis draws the seed of the bulk: one vectorised draw, however large the batch.
    seed = draw(_SEED)
    gen = torch.Generator().manual_seed(_mix(seed, salt))
    sizes = [v.size for v in case.variables]

    def clean(rows: torch.Tensor) -> torch.Tensor:
        rows = _round(rows, tdt)
        args = tuple(
            part.reshape(-1, *v.shape)
            for v, part in zip(case.variables, rows.split(sizes, dim=1), strict=True)
        )
        keep = _valid(case, rows, args)
        return rows if keep is None or bool(keep.all()) else rows[keep]

    def top_up(
        batch: torch.Tensor,
        count: int,
        make: Callable[[Case, int, torch.Generator, str], torch.Tensor],
    ) -> torch.Tensor:
        kept = 1.0  # the share of drawn rows the domain filter keeps, as seen so far
        for _ in range(8):
            missing = count - int(batch.shape[0])
            if missing <= 0:
                break
            # Enough spare rows for the filter's losses, so one round is usually enough.
            want = int(missing / max(kept, 0.05) * 1.1) + 4
            extra = clean(make(case, want, gen, dname))
            kept = max(int(extra.shape[0]), 1) / want
            batch = torch.cat([batch, extra])
        return batch[:count]

    none = torch.empty((0, case.n_in), dtype=torch.float64)
    generic = top_up(none, n_generic, _uniform)
    other = top_up(clean(torch.cat(explicit, dim=1)), n_other, _fill)
    if int(generic.shape[0]) + int(other.shape[0]) < n:  # a domain the uniform draw misses
        other = top_up(other, n - int(generic.shape[0]), _fill)
    batch = _interleave(generic, other)
    if int(batch.shape[0]) == 0:
        batch = clean(torch.cat([p.reshape(p.shape[0], -1) for p in _probe_rows(case)], dim=1))
    batch = batch[:n].to(tdt)
    # Contiguous, as a user's tensors usually are: column slices would make every path pay
    # for strided access (and some torch kernels take other code paths on them).
    return {
        v.name: part.reshape(-1, *v.shape).contiguous()
        for v, part in zip(case.variables, batch.split(sizes, dim=1), strict=True)
    }


def generic_rows(batch_size: int) -> int:
    """How many rows of a batch of ``batch_size`` are generic (uniform in the domain): at least
    half, and row 0 always; they take the even rows ``0, 2, 4, …``."""
    return (batch_size + 1) // 2


def _uniform(case: Case, k: int, gen: torch.Generator, dtype: str) -> torch.Tensor:
    """``k`` rows ``(k, n_in)`` uniform in every column's sampling bounds."""
    import torch

    cols = _columns(case, dtype)
    u = torch.rand(k, case.n_in, generator=gen, dtype=torch.float64)
    return torch.addcmul(cols.lo, u, cols.uscale, value=0.6)


def _interleave(generic: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Generic rows at the even positions, the others at the odd ones (the longer tail last)."""
    import torch

    both = min(int(generic.shape[0]), int(other.shape[0]))
    paired = torch.stack([generic[:both], other[:both]], dim=1)
    paired = paired.reshape(2 * both, int(generic.shape[1]))
    return torch.cat([paired, generic[both:], other[both:]])


def _probe_rows(case: Case) -> list[torch.Tensor]:
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


@functools.lru_cache(maxsize=256)
def _vector_args(width: int) -> st.SearchStrategy[tuple[int, int]]:
    """A generator seed and, when ``>= 0``, the basis vector the first row becomes."""
    return st.tuples(_SEED, st.integers(-1, max(0, width - 1)))


def _build_vectors(
    args: tuple[int, int], width: int, batch_size: int, dtype: Any, salt: int
) -> torch.Tensor:
    import torch

    seed, basis = args
    gen = torch.Generator().manual_seed(_mix(seed, salt))
    # float32 draws (five times faster on the CPU), exactly representable in every dtype
    # verijac checks down to float32.
    out = torch.randn(batch_size, width, generator=gen).to(torch.float64)
    if basis >= 0 and width:
        out[0] = 0.0
        out[0, basis % width] = 1.0  # a basis vector picks one Jacobian column/row exactly
    return out.to(_torch_dtype(dtype))


def _vectors(
    width: int, batch_size: int, dtype: Any, salt: int = 0
) -> st.SearchStrategy[torch.Tensor]:
    return _vector_args(width).map(
        lambda args: _build_vectors(args, width, batch_size, dtype, salt)
    )


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
    t = _build_vectors(draw(_vector_args(case.n_in)), case.n_in, n, "float64", salt + 1)
    c = _build_vectors(draw(_vector_args(case.n_out)), case.n_out, n, "float64", salt + 2)
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
    "MIXED_ROWS",
    "PROFILES",
    "STRUCTURES",
    "Batch",
    "Profile",
    "batches",
    "cotangents",
    "generic_rows",
    "get_profile",
    "points",
    "specials",
    "tangents",
    "valid_rows",
]
