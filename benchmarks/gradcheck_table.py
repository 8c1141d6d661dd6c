"""Which planted bugs does torch.autograd.gradcheck catch, and which does verijac catch?

Measured, not assumed: for every op in ``tests/planted_ops.py`` (buggy and correct twin) and
seeds 0..9, each checker gets the same kind of input: a batch of 4 points drawn uniformly from
the case's domain (gradcheck) or verijac's own strategies (``check_op`` with the settings of
``tests/test_planted_bugs.py``). A cell is "caught on k of 10 seeds"; for the correct twins it
counts false alarms. Run from the repository root::

    python benchmarks/gradcheck_table.py
"""

from __future__ import annotations

import datetime
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from planted_ops import PLANTED, SEEDS, Planted, check_planted


def _inputs(planted: Planted, seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for v in planted.case.variables:
        lo, hi = v.domain.sample_bounds()
        u = torch.rand(4, *v.shape, generator=gen, dtype=torch.float64)
        out.append((lo + (hi - lo) * u).to(dtype).requires_grad_(True))
    return tuple(out)


def _fails(
    check: Callable[..., Any], op: Callable[..., Any], inputs: tuple[torch.Tensor, ...], **kw: Any
) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gradcheck warns about float32 inputs
        try:
            return not check(op, inputs, raise_exception=False, **kw)
        except Exception:  # gradcheck raises for some failures even with raise_exception=False
            return True


COLUMNS: dict[str, Callable[[Callable[..., Any], Planted, int], bool]] = {
    "gradcheck f64": lambda op, p, s: _fails(
        torch.autograd.gradcheck, op, _inputs(p, s, torch.float64)
    ),
    "gradcheck f32": lambda op, p, s: _fails(
        torch.autograd.gradcheck, op, _inputs(p, s, torch.float32)
    ),
    "gradcheck f64 fwd-AD": lambda op, p, s: _fails(
        torch.autograd.gradcheck, op, _inputs(p, s, torch.float64), check_forward_ad=True
    ),
    "gradgradcheck f64": lambda op, p, s: _fails(
        torch.autograd.gradgradcheck, op, _inputs(p, s, torch.float64)
    ),
    "verijac check_op": lambda op, p, s: not check_planted(p, op, s).passed,
}


def main() -> None:
    head = ["op", "twin", *COLUMNS]
    rows = []
    for p in PLANTED:
        for twin in ("buggy", "correct"):
            op = getattr(p, twin)
            cells = [f"{sum(fn(op, p, s) for s in SEEDS)}/10" for fn in COLUMNS.values()]
            rows.append([p.name, twin, *cells])
    print(
        f"<!-- measured {datetime.date.today()} with torch {torch.__version__}: python benchmarks/gradcheck_table.py -->"
    )
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
