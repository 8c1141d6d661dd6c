"""Worker processes (`verijac._parallel`) and merged evaluation of drawn batches."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import sympy
import torch

from verijac import Case, UsageError, check, scalar
from verijac._evaluate import _head_rows
from verijac._parallel import FULL_COLLECTION_EVERY, can_fork, resolve_jobs, run_groups
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


#: Run in a fresh interpreter: the test process may hold threads (or JAX, loaded by other
#: tests) that make verijac rightly refuse to fork there.
SCRIPT = """
import gc, json, os, signal, sys
import sympy, torch
from verijac import Case, scalar
from verijac._runner import run

x = scalar("x")
cases = [Case(f"par_{k}", {"x": x}, e, {"x": (-1, 1)})
         for k, e in enumerate([sympy.sin(x), x**3, sympy.exp(x) * x])]
small = dict(max_examples=2, batch_size=16, seed=5, dtypes=["float64"],
             paths=["reverse.vjp_random", "forward.dual", "func.jacrev"])
doomed = cases[1]

def func_for(case):
    impl = case.implementation()
    if sys.argv[1] == "gc":
        def tell(t):  # the worker's collector settings, said through the record's reason
            raise RuntimeError(f"gc {gc.get_threshold()[2]} {gc.get_freeze_count()}")
        return tell
    if case is not doomed or sys.argv[1] != "crash":
        return impl
    def crash(t):
        os.kill(os.getpid(), signal.SIGKILL)
        return impl(t)
    return crash

def key(report):
    return [[r.case, r.path, r.dtype, r.status, r.points, r.max_abs, r.reason]
            for r in report.records]

out = {}
streamed = []
if sys.argv[1] == "same":
    out["one"] = key(run(cases, jobs=1, **small))
    two = run(cases, jobs=2, on_record=lambda r: streamed.append(r.case), **small)
    out["two"] = key(two)
    out["jobs"] = two.settings["jobs"]
    out["streamed"] = streamed
elif sys.argv[1] == "gc":
    before = gc.get_threshold()
    out["workers"] = [r[6] for r in key(run(cases, func_for=func_for, jobs=2, **small))]
    out["parent"] = [before, gc.get_threshold(), gc.get_freeze_count()]
else:
    out["crash"] = key(run(cases, func_for=func_for, jobs=2, **small))
print(json.dumps(out))
"""


def _fresh(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@needs_fork
def test_two_jobs_report_exactly_what_one_job_reports_in_report_order() -> None:
    out = _fresh("same")
    assert out["jobs"] == 2
    assert out["one"] == out["two"]
    assert out["streamed"] == [r[0] for r in out["two"]]  # streamed in report order


@needs_fork
def test_a_worker_that_dies_costs_its_case_only() -> None:
    """A crash inside the op (here a SIGKILL) turns that case's records into errors that say
    so; the other cases are checked as usual."""
    records = _fresh("crash")["crash"]
    by_case: dict[str, set[str]] = {}
    for case, _path, _dtype, status, _points, _abs, _reason in records:
        by_case.setdefault(case, set()).add(status)
    assert by_case == {"par_0": {"pass"}, "par_1": {"error"}, "par_2": {"pass"}}
    assert all("died with signal SIGKILL" in r[6] for r in records if r[0] == "par_1")
    assert len(records) == 3 * 3


@needs_fork
def test_workers_freeze_what_they_inherit_and_collect_the_oldest_generation_rarely() -> None:
    """Each worker freezes the heap it inherits and raises its full-collection threshold
    (`FULL_COLLECTION_EVERY`); the parent's own collector is left exactly as it was."""
    out = _fresh("gc")
    assert len(out["workers"]) == 3 * 3
    for reason in out["workers"]:
        words = reason.split("gc ")[1].split()
        assert int(words[0]) >= FULL_COLLECTION_EVERY and int(words[1]) > 0, reason
    before, after, frozen = out["parent"]
    assert after == before and frozen == 0


def test_no_fork_where_threads_would_be_copied_half(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread (or JAX's runtime) in the process: one job, and the report says why."""
    import threading

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        assert "other thread" in can_fork(["cpu"]) or "loaded" in can_fork(["cpu"])
        report = run(CASES[:2], paths=PATHS, jobs=2, **SMALL)
        assert report.settings["jobs"] == 1
        assert "one job" in report.settings["jobs_note"]
    finally:
        stop.set()
        helper.join()
    monkeypatch.setitem(sys.modules, "jax", object())
    assert "jax is loaded" in can_fork(["cpu"])


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
