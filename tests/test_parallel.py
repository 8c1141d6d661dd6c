"""Worker processes (`verijac._parallel`) and merged evaluation of drawn batches."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import pytest
import sympy
import torch

from verijac import Case, UsageError, check, scalar
from verijac._evaluate import _head_rows
from verijac._parallel import can_fork, resolve_jobs, run_groups
from verijac._runner import run

x = scalar("x")
SMALL = dict(max_examples=2, batch_size=16, seed=5, dtypes=["float64"])
PATHS = ["reverse.vjp_random", "forward.dual", "func.jacrev"]

needs_fork = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="worker processes are forked on Linux only"
)


def _case(name: str, expr: Any) -> Case:
    return Case(name, {"x": x}, expr, {"x": (-1, 1)})


CASES = [_case(f"par_{k}", e) for k, e in enumerate([sympy.sin(x), x**3, sympy.exp(x) * x])]


def _key(report: Any) -> list[tuple[Any, ...]]:
    return [(r.case, r.path, r.dtype, r.status, r.points, r.max_abs) for r in report.records]


@needs_fork
def test_two_jobs_report_exactly_what_one_job_reports() -> None:
    one = run(CASES, paths=PATHS, jobs=1, **SMALL)
    two = run(CASES, paths=PATHS, jobs=2, **SMALL)
    assert _key(one) == _key(two)
    assert two.settings["jobs"] == 2 and one.settings["jobs"] == 1


@needs_fork
def test_records_stream_in_report_order_from_workers() -> None:
    seen: list[str] = []
    report = run(CASES, paths=PATHS, jobs=2, on_record=lambda r: seen.append(r.case), **SMALL)
    assert seen == [r.case for r in report.records]
    assert seen == sorted(seen, key=lambda c: [k.name for k in CASES].index(c))


@needs_fork
def test_a_worker_that_dies_costs_its_group_only() -> None:
    """A crash inside the op (here a SIGKILL) turns that group's records into errors that
    say so; the other groups are checked as usual."""
    doomed = CASES[1]

    def func_for(case: Case) -> Any:
        impl = case.implementation()
        if case is not doomed:
            return impl

        def crash(t: torch.Tensor) -> torch.Tensor:
            os.kill(os.getpid(), signal.SIGKILL)
            return impl(t)

        return crash

    report = run(CASES, func_for=func_for, paths=PATHS, jobs=2, **SMALL)
    by_case: dict[str, set[str]] = {}
    for r in report.records:
        by_case.setdefault(r.case, set()).add(r.status)
    assert by_case[doomed.name] == {"error"}
    assert all(
        "died with signal SIGKILL" in r.reason for r in report.records if r.case == doomed.name
    )
    assert by_case[CASES[0].name] == {"pass"} and by_case[CASES[2].name] == {"pass"}
    assert len(report.records) == len(CASES) * len(PATHS)


def test_jobs_are_validated() -> None:
    assert resolve_jobs(3) == 3 and resolve_jobs("2") == 2
    assert 1 <= resolve_jobs("auto") <= 8
    for bad in (-1, "many", 1.5, True):
        with pytest.raises(UsageError, match="jobs"):
            resolve_jobs(bad)
    with pytest.raises(UsageError, match="jobs"):
        check(CASES[0], jobs="lots")


def test_no_fork_for_gpu_devices() -> None:
    assert "cannot be used from a forked worker" in can_fork(["cpu", "cuda:0"])


def test_run_groups_serially_in_order() -> None:
    out: list[int] = []
    run_groups(4, lambda i, emit: emit(i), lambda i, made, why: [], out.append, 1)  # type: ignore[arg-type, return-value]
    assert out == [0, 1, 2, 3]


def test_per_point_rows_come_from_the_head_of_each_drawn_batch() -> None:
    assert _head_rows([0, 64, 128, 192], 256, 8) == [0, 1, 2, 3, 64, 65, 66, 67]
    assert _head_rows([0, 2], 5, 8) == [0, 1, 2, 3, 4]
    assert _head_rows([0], 64, 3) == [0, 1, 2]


def test_a_mismatch_in_merged_batches_names_them() -> None:
    """Drawn batches are evaluated together; the report says which were merged."""
    wrong = Case("par_wrong", {"x": x}, sympy.sin(x), {"x": (-1, 1)}, torch_impl=torch.cos)
    report = check(wrong, paths=["reverse.vjp_random"], max_examples=4, batch_size=16, seed=1)
    (record,) = [r for r in report.records if r.dtype == "float64"]
    assert record.status == "mismatch"
    assert "batches 1-4 (evaluated together)" in record.reason
