"""The block layout (`verijac._layout`): which flat rows and columns each block covers, how
blocks nest as torch nests them, and that every walk over the blocks agrees with the others."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from typing import Any

import pytest
import sympy
import torch

import verijac
from verijac import Case, _layout
from verijac._layout import Block, Layout, ranges, size
from verijac.paths._base import flat_hessian, flat_jacobian


def _typical(outs: list[tuple[int, ...]], ins: list[tuple[int, ...]]) -> Layout:
    """A layout with tuple levels where a function with these outputs / inputs has them."""
    return Layout(tuple(outs), tuple(ins), tuple_outputs=len(outs) > 1, tuple_inputs=len(ins) > 1)


def _names(layout: Layout, order: int) -> list[str]:
    """One label per block, ``"o|v|w"``, in block order."""
    return ["|".join(map(str, b.position)) for b in layout.blocks(order)]


def test_layout_is_a_leaf_module() -> None:
    """paths/ and the case both import it: it must import nothing of verijac, torch or SymPy."""
    tree = ast.parse(inspect.getsource(_layout))
    imported = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(isinstance(n, ast.Import) or n.level == 0 for n in imported)
    names = {a.name for n in imported if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in imported if isinstance(n, ast.ImportFrom)}
    assert names <= {"__future__", "itertools", "math", "collections.abc", "dataclasses", "typing"}
    code = "import sys, verijac._layout; print(sorted({'torch', 'sympy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- index arithmetic --------------------------------------------------------------------------


def test_size_and_ranges() -> None:
    assert size(()) == 1
    assert size((2, 3)) == 6
    assert ranges([(), (2, 3), (4,)]) == (range(0, 1), range(1, 7), range(7, 11))


def test_jacobian_blocks_cover_their_rows_and_columns() -> None:
    layout = Layout(((), (2,)), ((3,), (), (2, 2)), tuple_outputs=True, tuple_inputs=True)
    assert (layout.m, layout.n) == (3, 8)
    assert layout.out_ranges == (range(0, 1), range(1, 3))
    assert layout.in_ranges == (range(0, 3), range(3, 4), range(4, 8))
    blocks = layout.blocks(1)
    assert [b.position for b in blocks] == [(o, v) for o in range(2) for v in range(3)]
    second = blocks[4]  # output 1 × input 1
    assert second == Block((1, 1), ((2,), ()), (range(1, 3), range(3, 4)))
    assert second.shape == (2,)
    assert second.sizes == (2, 1)
    assert blocks[5].shape == (2, 2, 2)
    assert blocks[5].ranges == (range(1, 3), range(4, 8))


def test_hessian_blocks_run_over_input_pairs_row_major() -> None:
    layout = Layout(((2,),), ((), (3,)), tuple_outputs=False, tuple_inputs=True)
    blocks = layout.blocks(2)
    assert [b.position for b in blocks] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)]
    assert blocks[1].shape == (2, 3)
    assert blocks[2].ranges == (range(0, 2), range(1, 4), range(0, 1))
    assert blocks[3].sizes == (2, 3, 3)


def test_take_reads_the_flat_entries_row_major() -> None:
    layout = Layout(((2,),), ((), (2,)), tuple_outputs=False, tuple_inputs=True)
    values = ["v0", "v1"]
    jac = [[f"j{r}{c}" for c in range(3)] for r in range(2)]
    hess = [[[f"h{r}{a}{b}" for b in range(3)] for a in range(3)] for r in range(2)]
    assert layout.blocks(0)[0].take(values) == ["v0", "v1"]
    assert layout.blocks(1)[1].take(jac) == ["j01", "j02", "j11", "j12"]
    assert layout.blocks(2)[2].take(hess) == ["h010", "h020", "h110", "h120"]


def test_shapes_given_as_lists_or_sizes_become_tuples() -> None:
    layout = Layout(
        (torch.Size([2]),),
        ([3], ()),  # type: ignore[arg-type]
        tuple_outputs=False,
        tuple_inputs=True,
    )
    assert layout.out_shapes == ((2,),)
    assert layout.in_shapes == ((3,), ())
    assert layout.blocks(1)[0].shape == (2, 3)


# -- torch's nesting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outs", "ins", "order", "expected"),
    [
        ([()], [()], 0, "0"),
        ([(), (2,)], [()], 0, ("0", "1")),
        ([()], [(2,)], 1, "0|0"),
        ([(), (2,)], [(3,)], 1, ("0|0", "1|0")),
        ([(2,)], [(), (3,)], 1, ("0|0", "0|1")),
        ([(), (2,)], [(), (3,)], 1, (("0|0", "0|1"), ("1|0", "1|1"))),
        # one scalar output: exactly torch.autograd.functional.hessian's nesting
        ([()], [(3,)], 2, "0|0|0"),
        ([()], [(), (3,)], 2, (("0|0|0", "0|0|1"), ("0|1|0", "0|1|1"))),
        # several outputs: [output][input i][input j], levels where there are tuples
        ([(2,)], [(3,)], 2, "0|0|0"),
        ([(), (2,)], [(3,)], 2, ("0|0|0", "1|0|0")),
        (
            [(), (2,)],
            [(), (3,)],
            2,
            (
                (("0|0|0", "0|0|1"), ("0|1|0", "0|1|1")),
                (("1|0|0", "1|0|1"), ("1|1|0", "1|1|1")),
            ),
        ),
    ],
)
def test_nest_has_a_level_only_where_torch_sees_a_tuple(
    outs: list[tuple[int, ...]], ins: list[tuple[int, ...]], order: int, expected: Any
) -> None:
    layout = _typical(outs, ins)
    names = _names(layout, order)
    assert layout.nest(names, order) == expected
    assert layout.leaves(expected, order) == names


def test_grid_keeps_every_level() -> None:
    layout = _typical([()], [(3,)])
    assert layout.grid(["a"], 2) == [[["a"]]]
    layout = _typical([(), (2,)], [(), (3,)])
    assert layout.grid(_names(layout, 1), 1) == [["0|0", "0|1"], ["1|0", "1|1"]]


def test_wrong_block_counts_are_refused() -> None:
    layout = _typical([(), (2,)], [(), (3,)])
    with pytest.raises(ValueError, match="expected 4 blocks of order 1"):
        layout.nest(["a", "b", "c"], 1)
    with pytest.raises(ValueError, match="zip"):
        layout.leaves((("a", "b"),), 1)  # one output given, two expected
    with pytest.raises(ValueError, match="zip"):
        layout.leaves((("a", "b"), ("c",)), 1)  # one input given for output 1


# -- the four walks agree ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def case() -> Case:
    """Two inputs (a scalar and a 2×2 array) and two outputs (a scalar and a 3-vector)."""
    t = verijac.scalar("t")
    w = verijac.array("w", (2, 2))
    outputs = (
        sympy.sin(t) * w[0, 1] + w[1, 0] ** 2 * w[1, 1],
        sympy.Array([t**2 * w[0, 0], sympy.exp(w[0, 1] - t), w[1, 1] * w[1, 0] * t]),
    )
    return Case(
        "layout_two_by_two",
        inputs={"t": t, "w": w},
        outputs=outputs,
        domain={"t": (-1, 1), "w": (-1, 1)},
    )


_POINTS = torch.tensor(
    [
        [0.3, 0.5, -0.2, 0.7, -0.9],
        [-0.8, 0.1, 0.4, -0.6, 0.25],
    ],
    dtype=torch.float64,
)


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return _POINTS[:, 0], _POINTS[:, 1:].reshape(2, 2, 2)


def _flat_exact(rows: Any, case: Case) -> torch.Tensor:
    """The flat SymPy derivative (nested lists) at `_POINTS`, ``(N, …)`` float64."""
    values = []
    for point in _POINTS.tolist():
        subs = dict(zip(case.in_symbols, point))

        def at(x: Any, subs: dict[Any, float] = subs) -> Any:
            return [at(e) for e in x] if isinstance(x, list) else float(x.xreplace(subs))

        values.append(at(rows))
    return torch.tensor(values, dtype=torch.float64)


def _sympy_at(nested: Any, case: Case, k: int) -> Any:
    """SymPy blocks nested as `Case.jacobian` returns them → tensors at point ``k``."""
    if isinstance(nested, tuple):
        return tuple(_sympy_at(b, case, k) for b in nested)
    subs = dict(zip(case.in_symbols, _POINTS[k].tolist()))
    if isinstance(nested, sympy.NDimArray):
        values = [float(e.xreplace(subs)) for e in sympy.flatten(nested.tolist())]
        return torch.tensor(values, dtype=torch.float64).reshape(tuple(nested.shape))
    return torch.tensor(float(nested.xreplace(subs)), dtype=torch.float64)


def _flags(case: Case) -> dict[str, Any]:
    return {
        "out_shapes": [o.shape for o in case.outputs],
        "in_shapes": [v.shape for v in case.variables],
        "tuple_outputs": case.tuple_outputs,
        "tuple_inputs": case.tuple_inputs,
    }


def test_case_torch_code_and_flat_layout_agree_on_the_jacobian(case: Case) -> None:
    exact = _flat_exact(case.derivatives.jacobian_sympy(), case)
    assert exact.shape == (2, 4, 5)
    generated = case.torch_jacobian()(*_inputs())
    assert torch.allclose(flat_jacobian(generated, **_flags(case)), exact, rtol=1e-14, atol=0)
    nested = case.jacobian()
    for k in range(2):  # one point: blocks without a batch dimension
        flat = flat_jacobian(_sympy_at(nested, case, k), **_flags(case))
        assert torch.allclose(flat, exact[k : k + 1], rtol=1e-14, atol=0)
    # torch's own nesting, as torch.autograd.functional.jacobian returns it
    func = case.torch_function()
    for k in range(2):
        point = tuple(x[k] for x in _inputs())
        theirs = torch.autograd.functional.jacobian(func, point)
        flat = flat_jacobian(theirs, **_flags(case))
        assert torch.allclose(flat, exact[k : k + 1], rtol=1e-12, atol=1e-15)


def test_case_torch_code_and_flat_layout_agree_on_the_hessian(case: Case) -> None:
    exact = _flat_exact(case.derivatives.hessian_sympy(), case)
    assert exact.shape == (2, 4, 5, 5)
    generated = case.torch_hessian()(*_inputs())
    assert torch.allclose(flat_hessian(generated, **_flags(case)), exact, rtol=1e-14, atol=0)
    nested = case.hessian()
    for k in range(2):
        flat = flat_hessian(_sympy_at(nested, case, k), **_flags(case))
        assert torch.allclose(flat, exact[k : k + 1], rtol=1e-14, atol=0)


def test_one_scalar_output_hessian_is_nested_like_torch() -> None:
    t = verijac.scalar("t")
    w = verijac.array("w", (2, 2))
    case = Case(
        "layout_scalar_hessian",
        inputs={"t": t, "w": w},
        outputs=sympy.sin(t) * w[0, 1] + w[1, 0] ** 2 * w[1, 1] * t,
        domain={"t": (-1, 1), "w": (-1, 1)},
    )
    flags = _flags(case)
    exact = _flat_exact(case.derivatives.hessian_sympy(), case)
    func = case.torch_function()
    for k in range(2):
        point = tuple(x[k] for x in _inputs())
        theirs = torch.autograd.functional.hessian(func, point)
        ours = case.torch_hessian()(*point)
        assert [tuple(b.shape) for row in theirs for b in row] == [
            tuple(b.shape) for row in ours for b in row
        ]
        assert torch.allclose(flat_hessian(theirs, **flags), exact[k : k + 1], rtol=1e-12)
        assert torch.allclose(flat_hessian(ours, **flags), exact[k : k + 1], rtol=1e-14)
    nested = case.hessian()
    assert [tuple(getattr(b, "shape", ())) for row in nested for b in row] == [
        (),
        (2, 2),
        (2, 2),
        (2, 2, 2, 2),
    ]


def test_the_value_nests_like_the_function(case: Case) -> None:
    t, w = _inputs()
    value = case.torch_function()(t, w)
    assert isinstance(value, tuple) and [tuple(v.shape) for v in value] == [(2,), (2, 3)]
    function = case.function()
    assert isinstance(function, tuple) and function[1].shape == (3,)
