"""Generated torch code: batch-first, dtype/device preserving, vmap- and compile-safe."""

from __future__ import annotations

import math

import pytest
import sympy
import torch
from torch.func import jacrev, vmap

import verijac
from verijac import Case, Interval, UnsupportedFunctionError

x, y = verijac.scalar("x"), verijac.scalar("y")


def _case(name: str, expr: object, domain: object = (-2, 2), **kw: object) -> Case:
    return Case(name, inputs={"x": x}, outputs=expr, domain={"x": domain}, **kw)  # type: ignore[arg-type]


def test_any_leading_batch_dims_and_dtype() -> None:
    A = verijac.array("A", (2, 2))
    case = Case("g_batch", inputs={"A": A, "y": y}, outputs=A.applyfunc(lambda e: sympy.exp(e) * y),
                domain={"A": (-1, 1), "y": (-1, 1)})  # fmt: skip
    a = torch.rand(3, 4, 2, 2, dtype=torch.float32)
    b = torch.rand(3, 4, dtype=torch.float32)
    out = case.torch_function()(a, b)
    assert out.shape == (3, 4, 2, 2) and out.dtype == torch.float32
    jac = case.torch_jacobian()(a, b)
    assert jac[0].shape == (3, 4, 2, 2, 2, 2) and jac[1].shape == (3, 4, 2, 2)
    assert torch.allclose(out, torch.exp(a) * b[..., None, None])
    hess = case.torch_hessian()(a.double(), b.double())
    assert hess[0][0].shape == (3, 4, 2, 2, 2, 2, 2, 2) and hess[1][1].shape == (3, 4, 2, 2)


def test_constant_entries_are_tensors_and_vmap_accepts_them() -> None:
    case = _case("g_const", sympy.Array([x, 3, sympy.pi]))
    out = case.torch_function()(torch.tensor([0.5, 1.0]))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3)
    assert out[:, 1].tolist() == [3.0, 3.0] and out[0, 2].item() == pytest.approx(math.pi)
    jac = vmap(jacrev(case.torch_function()))(torch.tensor([0.5, 1.0]))
    assert jac.tolist() == [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    assert vmap(case.torch_jacobian())(torch.tensor([0.5, 1.0])).tolist() == [[1.0, 0.0, 0.0]] * 2


def test_sympy_printer_pitfalls_are_avoided() -> None:
    # Max(x, 1) → torch.max(1, x) TypeError; sqrt(2)*x → torch.sqrt(2) on an int.
    case = _case("g_pitfalls", sympy.Max(x, 1) + sympy.sqrt(2) * x, Interval(-2, 2, exclude=(1,)))
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    assert case.torch_function()(t).tolist() == pytest.approx([1.0, 2.0 + 2 * math.sqrt(2)])
    # Piecewise with integer branches stays floating point and differentiable.
    pw = _case(
        "g_pw_int", sympy.Piecewise((1, x > 0), (0, True)) * x, Interval(-2, 2, exclude=(0,))
    )
    out = pw.torch_function()(torch.tensor([-1.0, 1.0]))
    assert out.dtype == torch.float32 and out.tolist() == [0.0, 1.0]


def test_piecewise_gradient_does_not_leak_nan() -> None:
    case = _case("g_safe_pw", sympy.Piecewise((sympy.sqrt(x), x > 0), (0, True)),
                 Interval(-2, 2, exclude=(0,)))  # fmt: skip
    t = torch.tensor([-1.0, 0.0, 4.0], dtype=torch.float64, requires_grad=True)
    case.torch_function()(t).sum().backward()
    assert t.grad is not None and t.grad.tolist() == [0.0, 0.0, 0.25]
    naive = torch.where(t > 0, torch.sqrt(t), torch.zeros_like(t))
    (g,) = torch.autograd.grad(naive.sum(), t)
    assert torch.isnan(g[0])  # what the safe form avoids
    jac = vmap(jacrev(case.torch_function()))(t.detach())
    assert jac.tolist() == [0.0, 0.0, 0.25]


def test_works_under_vmap_and_torch_func_transforms() -> None:
    case = Case("g_vmap", inputs={"x": x, "y": y}, outputs=(sympy.sin(x) * y, sympy.atan2(y, x)),
                domain={"x": (0.5, 2), "y": (-1, 1)})  # fmt: skip
    xs, ys = torch.rand(5, dtype=torch.float64) + 0.5, torch.rand(5, dtype=torch.float64)
    auto = vmap(jacrev(case.torch_function(), argnums=(0, 1)))(xs, ys)
    exact = case.torch_jacobian()(xs, ys)
    for i in range(2):
        for j in range(2):
            assert torch.allclose(auto[i][j], exact[i][j], rtol=1e-12, atol=1e-14)
    assert torch.allclose(vmap(case.torch_jacobian())(xs, ys)[0][0], exact[0][0])


def test_works_under_torch_compile() -> None:
    case = _case("g_compile", sympy.tanh(x) * sympy.exp(-(x**2)))
    fn = torch.compile(case.torch_function(), backend="aot_eager", fullgraph=True)
    jac = torch.compile(case.torch_jacobian(), backend="aot_eager", fullgraph=True)
    t = torch.linspace(-1, 1, 7, dtype=torch.float64)
    assert torch.allclose(fn(t), case.torch_function()(t))
    assert torch.allclose(jac(t), case.torch_jacobian()(t))
    torch._dynamo.reset()


def test_large_dense_case_is_vectorised() -> None:
    import random

    rng = random.Random(1)
    n = 16
    X = verijac.array("x", (n,))
    W = [[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]
    out = sympy.Array([sympy.tanh(sum(W[i][j] * X[j] for j in range(n))) for i in range(n)])
    case = Case("g_dense", inputs={"x": X}, outputs=out, domain={"x": (-1, 1)})
    src = case.torch_code.source("jacobian")
    assert src.count("@") == 1  # one matmul for W @ x
    assert src.count("F_tanh") == 1  # tanh evaluated once on a vector, not per entry
    pts = torch.rand(10, n, dtype=torch.float64)
    wt = torch.tensor(W, dtype=torch.float64)
    auto = vmap(jacrev(lambda v: torch.tanh(wt @ v)))(pts)
    assert torch.allclose(case.torch_jacobian()(pts), auto, rtol=1e-12, atol=1e-13)


def test_a_function_of_constants_only_is_a_tensor_of_the_batch() -> None:
    """CSE makes ``x0 = sqrt(2)``; the entry ``1 + x0`` must not reach ``torch.stack`` as a
    Python float (it did: TypeError)."""
    X = verijac.array("x", (3,))
    r2 = sympy.sqrt(2)
    out = sympy.Array([r2 * X[0] + r2 * X[1], r2 + 1, r2 * X[2]])
    case = Case("g_const_of_consts", inputs={"x": X}, outputs=out, domain={"x": (-1, 1)})
    for dtype in (torch.float32, torch.float64):
        pts = torch.rand(4, 5, 3, dtype=dtype)
        value = case.torch_function()(pts)
        assert value.shape == (4, 5, 3) and value.dtype == dtype
        assert torch.allclose(value[..., 1], torch.full((4, 5), 1 + math.sqrt(2), dtype=dtype))
        jac = case.torch_jacobian()(pts)  # a block with constant entries only
        assert jac.shape == (4, 5, 3, 3) and jac.dtype == dtype
        auto = vmap(vmap(jacrev(case.torch_function())))(pts)
        assert torch.allclose(jac, auto)


def test_a_sum_over_shared_subexpressions_comes_after_them() -> None:
    """(I + u vᵀ)⁻¹ by Sherman–Morrison on 8-vectors: the denominator 1 + Σ u_k v_k becomes a
    matmul over CSE's products ``u_k·v_k``, which must be evaluated first (it was emitted
    before them: KeyError in ``emit_linear``)."""
    n = 8
    u, v = verijac.array("u", (n,)), verijac.array("v", (n,))
    U, V = sympy.Matrix(list(u)), sympy.Matrix(list(v))
    out = sympy.eye(n) - U * V.T / (1 + (V.T * U)[0, 0])
    case = Case("g_rank_one_inverse", inputs={"u": u, "v": v}, outputs=out,
                domain={"u": (0.1, 0.5), "v": (0.1, 0.5)})  # fmt: skip
    a = torch.rand(6, n, dtype=torch.float64) * 0.4 + 0.1
    b = torch.rand(6, n, dtype=torch.float64) * 0.4 + 0.1
    expected = torch.linalg.inv(torch.eye(n, dtype=torch.float64) + a[:, :, None] * b[:, None, :])
    assert torch.allclose(case.torch_function()(a, b), expected, rtol=1e-12, atol=1e-14)
    auto = vmap(jacrev(case.torch_function(), argnums=(0, 1)))(a, b)
    exact = case.torch_jacobian()(a, b)
    for k in range(2):
        assert torch.allclose(exact[k], auto[k], rtol=1e-11, atol=1e-13)


def _refuse_evaluating_long_max(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make evaluating a Max/Min of more than 3 arguments fail: SymPy compares every pair of
    them with its assumptions (minutes at 64 arguments)."""
    from sympy.functions.elementary.miscellaneous import MinMaxBase

    original = MinMaxBase._find_localzeros.__func__  # type: ignore[attr-defined]

    def guarded(cls: type, values: object, **options: object) -> object:
        values = list(values)  # type: ignore[call-overload]
        assert len(values) <= 3, f"verijac evaluated a {cls.__name__} of {len(values)} arguments"
        return original(cls, values, **options)

    monkeypatch.setattr(MinMaxBase, "_find_localzeros", classmethod(guarded))


def test_a_long_max_is_never_re_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64-argument Max built with evaluate=False: CSE rebuilt it with evaluation, and its
    derivative evaluated the Max of the other 63 arguments, each quadratic in them."""
    n = 64
    X = verijac.array("x", (n,))
    out = sympy.Max(*[(k + 1) * X[k] for k in range(n)], evaluate=False)
    _refuse_evaluating_long_max(monkeypatch)
    case = Case("g_max64", inputs={"x": X}, outputs=out, domain={"x": (-1, 1)})
    pts = torch.rand(5, n, dtype=torch.float64) * 2 - 1
    weights = torch.arange(1, n + 1, dtype=torch.float64)
    assert torch.equal(case.torch_function()(pts), (weights * pts).max(dim=-1).values)
    auto = vmap(jacrev(case.torch_function()))(pts)
    assert torch.equal(case.torch_jacobian()(pts), auto)
    assert torch.equal(case.torch_hessian()(pts), torch.zeros(5, n, n, dtype=torch.float64))


def test_generating_code_leaves_sympy_evaluating() -> None:
    """The CSE of SymPy cases rebuilds nodes under ``evaluate(False)``; two overlapping
    entries (a repeated ``exp(Max)`` met after a rebuilt ``cos(Max)``) once left evaluation
    off for every later caller, and the next case's derivatives came out unevaluated."""
    from sympy.core.parameters import global_parameters

    m = sympy.Max(x, y)
    case = Case("g_cse_nesting", inputs={"x": x, "y": y},
                outputs=sympy.Array([sympy.cos(m), sympy.exp(m), sympy.exp(m) * y]),
                domain={"x": (-1, 1), "y": (-1, 1)}, exclude=[x - y])  # fmt: skip
    case.torch_jacobian()
    assert global_parameters.evaluate
    assert sympy.besseli(0, x).diff(x) == sympy.besseli(1, x)


def test_unsupported_function_names_it_and_registration_works() -> None:
    class cube(sympy.Function):
        def fdiff(self, argindex: int = 1) -> sympy.Expr:
            return 3 * self.args[0] ** 2

    with pytest.raises(UnsupportedFunctionError, match="register_function"):
        _case("g_unsupported", cube(x))
    verijac.register_function(cube, lambda t: t**3, description="t**3")
    try:
        case = _case("g_registered", cube(x))
        assert case.torch_jacobian()(torch.tensor(2.0)).item() == 12.0
    finally:
        verijac.unregister_function(cube)


def test_unregistered_user_function_advice_names_the_users_class() -> None:
    class quartic(sympy.Function):
        pass

    with pytest.raises(UnsupportedFunctionError) as info:
        _case("g_quartic", quartic(x)).torch_function()
    assert "verijac.register_function(quartic, my_torch_impl)" in str(info.value)


def test_a_symbol_without_a_value_is_an_internal_error() -> None:
    """A generator inconsistency is verijac's bug, never a usage error (issue 11)."""
    from verijac._codegen import _Generator
    from verijac._errors import InternalError

    with pytest.raises(InternalError, match="a bug in verijac") as info:
        _Generator("sympy", [], []).scalar_env(sympy.Symbol("lost"))
    assert not isinstance(info.value, verijac.UsageError)
    assert "lost" in info.value.detail and "please report it" in str(info.value)


def test_wrong_input_shape_and_dtype_are_clear() -> None:
    case = verijac.get_case("seed_matrix_square")
    with pytest.raises(verijac.ShapeError, match=r"ending in \(2, 2\)"):
        case.torch_function()(torch.ones(3))
    with pytest.raises(verijac.ShapeError, match="floating-point"):
        case.torch_function()(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(verijac.ShapeError, match="takes 1 tensors"):
        case.torch_function()(torch.ones(2, 2), torch.ones(2, 2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_stay_on_cuda() -> None:
    case = verijac.get_case("seed_tuple_io")
    args = [torch.tensor(v, device="cuda") for v in (3.0, 4.0, 5.0)]
    jac = case.torch_jacobian()(*args)
    assert all(v.device.type == "cuda" for row in jac for v in row)
