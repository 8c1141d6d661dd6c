"""Scale cases: dense layers tanh(W x) at 64 → 64 and 256 → 256, a 512-input reduction and a
batched matrix product.

These are not in the default library: building them costs seconds to minutes (the symbolic
set-up targets are measured by ``benchmarks/bench_symbolic.py``), and their exact Hessians
(64³ and 256³ entries for the dense layers) are too large for the second-order paths. Load
them explicitly and check the first-order paths:

```bash
verijac check --cases-dir cases/scale --tag scale --profile ci \
    --path reverse --path functional.jacobian --path functional.vjp --path functional.jvp \
    --path func.jacrev --path func.jacfwd --path func.vjp --path func.jvp --path forward
```

The weights are drawn once from a seeded generator and rounded to float32, so they are exact
in float32 and float64 (and all distinct).
"""

from __future__ import annotations

import random
import struct

import sympy
import torch
import torch.nn.functional as F

from verijac import Case, KnownPoint, array

_TAGS = frozenset({"scale", "smooth"})


def _weights(n: int, seed: int) -> list[list[sympy.Float]]:
    """Uniform in ±1/√n, rounded to float32 (so exact in float32 and float64), all distinct."""
    rng = random.Random(seed)
    return [
        [sympy.Float(struct.unpack("f", struct.pack("f", rng.uniform(-1, 1) / n**0.5))[0])
         for _ in range(n)]
        for _ in range(n)
    ]  # fmt: skip


def _dense(n: int) -> Case:
    x = array("x", (n,))
    w = _weights(n, seed=0)
    # sums of many distinct terms: build them unevaluated (SymPy's evaluating Add is slow here)
    rows = [
        sympy.tanh(sympy.Add(*[w[i][j] * x[j] for j in range(n)], evaluate=False)) for i in range(n)
    ]
    w_float = [[float(v) for v in row] for row in w]

    def dense(t: torch.Tensor) -> torch.Tensor:
        W = torch.tensor(w_float, dtype=t.dtype, device=t.device)
        return torch.tanh(F.linear(t, W))

    return Case(
        f"scale_dense_tanh_{n}",
        inputs={"x": x},
        outputs=sympy.Array(rows),
        domain={"x": (-1, 1)},
        known=[KnownPoint(at={"x": [0] * n}, value=[0] * n, jacobian=w, note="tanh'(0) = 1")],
        tags=_TAGS,
        torch_impl=dense,
        description=f"a dense layer tanh(W x), {n} → {n}, fixed weights "
        "(torch.nn.functional.linear, torch.tanh)",
    )


x512 = array("x", (512,))
scale_reduction_512 = Case(
    "scale_reduction_512",
    inputs={"x": x512},
    outputs=sympy.Add(*[sympy.log(1 + sympy.exp(e)) for e in x512], evaluate=False),
    domain={"x": (-5, 5)},
    known=[
        KnownPoint(
            at={"x": [0] * 512},
            value=512 * sympy.log(2),
            jacobian=[sympy.Rational(1, 2)] * 512,
        )
    ],
    tags=_TAGS | {"scalar-output"},
    torch_impl=lambda x: F.softplus(x).sum(-1),
    description="Σ softplus(x_i) over 512 inputs (torch.nn.functional.softplus, sum)",
)

A = array("A", (4, 2, 3))
B = array("B", (4, 3, 2))
scale_batched_matmul = Case(
    "scale_batched_matmul",
    inputs={"A": A, "B": B},
    outputs=sympy.Array(
        [
            [
                [sympy.Add(*[A[b, i, k] * B[b, k, j] for k in range(3)]) for j in range(2)]
                for i in range(2)
            ]
            for b in range(4)
        ]
    ),
    domain={"A": (-2, 2), "B": (-2, 2)},
    known=[
        KnownPoint(
            at={"A": [[[1, 0, 0], [0, 1, 0]]] * 4, "B": [[[1, 2], [-1, 0], [2, -2]]] * 4},
            value=[[[1, 2], [-1, 0]]] * 4,
            note="A selects B's first two rows",
        )
    ],
    tags=_TAGS | {"polynomial", "matrix"},
    torch_impl=torch.matmul,
    description="a batch of 4 products of 2×3 and 3×2 matrices (torch.matmul)",
)

scale_dense_tanh_64 = _dense(64)
scale_dense_tanh_256 = _dense(256)

CASES = [scale_batched_matmul, scale_reduction_512, scale_dense_tanh_64, scale_dense_tanh_256]
