"""The seed documents' printed values, exactly, from the symbolic side and the generated code."""

from __future__ import annotations

import sympy
import torch
from verijac_cases.seeds import SEED_003_TABLE

import verijac


def test_seed_tuple_io_symbolic_and_generated() -> None:
    case = verijac.get_case("seed_tuple_io")
    x1, x2, x3 = case.in_symbols
    at = {x1: 3, x2: 4, x3: 5}
    exact = tuple(tuple(e.subs(at) for e in row) for row in case.jacobian())
    assert exact == ((1, 1, 0), (5, 0, 3), (0, 48, 0))
    jac = case.torch_jacobian()(torch.tensor(3.0), torch.tensor(4.0), torch.tensor(5.0))
    # Same nesting and values as the seed's print of torch.autograd.functional.jacobian.
    assert [[float(v) for v in row] for row in jac] == [[1, 1, 0], [5, 0, 3], [0, 48, 0]]
    assert all(v.dtype == torch.float32 and v.shape == () for row in jac for v in row)
    torch_says = torch.autograd.functional.jacobian(
        case.torch_function(), (torch.tensor(3.0), torch.tensor(4.0), torch.tensor(5.0))
    )
    assert [[float(v) for v in row] for row in torch_says] == [[1, 1, 0], [5, 0, 3], [0, 48, 0]]


def test_seed_matrix_square_jacobian_vjp_and_accumulation() -> None:
    case = verijac.get_case("seed_matrix_square")
    eye = torch.eye(2)
    expected = torch.tensor(
        [[[[4.0, 0.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 0.0]]],
         [[[0.0, 0.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 4.0]]]]
    )  # fmt: skip
    assert torch.equal(case.torch_jacobian()(eye), expected)
    exact = case.jacobian().subs(
        {s: (1 if s.name in ("x[0,0]", "x[1,1]") else 0) for s in case.in_symbols}
    )
    assert exact.tolist() == expected.int().tolist()
    vjp = torch.einsum("ij,ijmn->mn", torch.ones(2, 2), case.torch_jacobian()(eye))
    assert vjp.tolist() == [[4.0, 2.0], [2.0, 4.0]]
    # Backward twice with the graph retained accumulates twice the gradient.
    inp = eye.clone().requires_grad_()
    out = case.torch_function()(inp)
    out.backward(torch.ones_like(inp), retain_graph=True)
    assert inp.grad is not None and inp.grad.tolist() == [[4.0, 2.0], [2.0, 4.0]]
    out.backward(torch.ones_like(inp))
    assert inp.grad.tolist() == [[8.0, 4.0], [4.0, 8.0]]


def test_seed_grad_loop() -> None:
    case = verijac.get_case("seed_grad_loop")
    x = torch.tensor([2.0, 3.0])
    assert case.torch_jacobian()(x).tolist() == [[4.0, 0.0], [0.0, 6.0]]
    s0, s1 = case.in_symbols
    assert case.jacobian().subs({s0: 2, s1: 3}).tolist() == [[4, 0], [0, 6]]


def test_seed_batched_gradient_table() -> None:
    case = verijac.get_case("seed_batched_gradient")
    one = torch.tensor(1.0)
    assert [float(g) for g in case.torch_jacobian()(one, one, one, one, one)] == [2, 3, 4, 5, 6]
    x0 = torch.arange(1.0, 10.0)
    ones = torch.ones(9)
    table = torch.stack(case.torch_jacobian()(x0, ones, ones, ones, ones), dim=-1)
    assert table.tolist() == SEED_003_TABLE
    syms = case.in_symbols
    grad = case.jacobian()
    rows = [
        [g.subs({syms[0]: k, **dict.fromkeys(syms[1:], 1)}) for g in grad] for k in range(1, 10)
    ]
    assert rows == SEED_003_TABLE


def test_seed_cases_carry_their_known_points() -> None:
    for name in ("seed_tuple_io", "seed_matrix_square", "seed_grad_loop", "seed_batched_gradient"):
        case = verijac.get_case(name)
        assert case.known, name
        assert "seed" in case.tags
    assert isinstance(verijac.get_case("seed_tuple_io").jacobian()[1][0], sympy.Symbol)
