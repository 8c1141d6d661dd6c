"""`verijac bench`: timings beside statuses, a wrong fast path reported as wrong, JAX optional."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from verijac._bench_cli import MODE_NAMES, batch_sizes
from verijac._bench_methods import MODES, UNBATCHED_POINTS
from verijac._bench_report import fmt_time
from verijac._bench_run import bench
from verijac._bench_timing import measure
from verijac._cli import main

#: A quick run: two small batch sizes, one sample, no warm-up, CPU, no JAX unless asked.
QUICK = ["--batch-sizes", "1,12", "--repeats", "1", "--warmup", "0", "--device", "cpu"]
QUICK += ["--no-progress"]

PLANTED = textwrap.dedent(
    '''
    """A case whose torch implementation has a wrong custom backward."""
    import torch

    from verijac import Case, scalar


    class _WrongSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x  # planted bug: d(x**2)/dx is 2x


    x = scalar("x")
    CASES = [
        Case(
            "bench_planted_square",
            inputs={"x": x},
            outputs=x**2,
            domain={"x": (0.5, 2)},
            torch_impl=_WrongSquare.apply,
            description="x² with a wrong custom backward",
        )
    ]
    '''
)


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cases directory with the planted case; unregistered afterwards."""
    from verijac import _registry

    d = tmp_path_factory.mktemp("bench_cases")
    (d / "planted_bench.py").write_text(PLANTED)
    yield d
    _registry._CASES.pop("bench_planted_square", None)
    _registry._SOURCES.pop("bench_planted_square", None)
    _registry._LOADED_DIRS.discard(d.resolve())


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("verijac: error: ")
    return lines[0]


def test_bench_prints_a_ranked_table_with_statuses_and_writes_json_and_plots(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    paths = ["--path", "func.vmap_grad", "--path", "functional.jacobian"]
    paths += ["--path", "range.grad_of_sum", "--path", "range.vmap_grad_matmul"]
    out_json, plots = tmp_path / "bench.json", tmp_path / "plots"
    code, out, _ = _run(
        capsys,
        "bench",
        "--case",
        "seed_batched_gradient",
        *QUICK,
        "--no-jax",
        *paths,
        "--json",
        str(out_json),
        "--output-dir",
        str(plots),
    )
    assert code == 0, out
    assert "ranked at 12 points" in out
    assert "one evaluation of f" in out
    assert "PASSED" in out.splitlines()[-1]
    data = json.loads(out_json.read_text())
    results = data["results"]
    assert {r["mode"] for r in results} == {"paths", "range-gradient", "range-jvp"}
    assert {r["status"] for r in results} == {"pass"}
    for r in results:
        assert r["per_point"] > 0 and r["vs_f"] > 0 and r["vs_fastest"] >= 1.0
    # One fastest correct method per mode and batch size: its ratio is exactly 1.
    for mode in ("paths", "range-gradient", "range-jvp"):
        at = [r for r in results if r["mode"] == mode and r["points"] == 12]
        assert min(r["vs_fastest"] for r in at) == 1.0
    # A per-point loop is timed on a few points and reported per point.
    loop = [r for r in results if r["method"] == "functional.jacobian" and r["points"] == 12]
    assert loop and all(r["timed_points"] == UNBATCHED_POINTS for r in loop)
    # The theoretical cost: one f for a gradient, min(n, m) = 1 for seed 003's Jacobian.
    assert {r["theory"] for r in results} == {1.0}
    assert data["settings"]["torch"] and data["settings"]["cpu_count"]
    pngs = sorted(plots.glob("*.png"))
    assert len(pngs) == 6  # lines and bars for each of the three modes
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        import matplotlib.image

        assert matplotlib.image.imread(png).shape[0] > 100


def test_a_fast_path_that_is_wrong_is_reported_as_wrong(
    capsys: pytest.CaptureFixture[str], cases_dir: Path, tmp_path: Path
) -> None:
    out_json = tmp_path / "b.json"
    code, out, _ = _run(
        capsys,
        "bench",
        "--cases-dir",
        str(cases_dir),
        "--case",
        "bench_planted_square",
        *QUICK,
        "--no-jax",
        "--mode",
        "paths",
        "--path",
        "reverse.vjp_random",
        "--path",
        "reverse.grad_loop",
        "--json",
        str(out_json),
    )
    assert code == 1
    assert "mismatch" in out and "FAILED" in out.splitlines()[-1]
    results = json.loads(out_json.read_text())["results"]
    assert {r["status"] for r in results} == {"mismatch"}
    # Timed all the same, but never the fastest correct answer.
    assert all(r["per_point"] > 0 and r["vs_fastest"] is None for r in results)
    assert "expected" in results[0]["reason"]


def test_range_modes_hold_the_other_inputs_fixed() -> None:
    from verijac import get_case

    report = bench(
        [get_case("seed_batched_gradient")],
        modes=["range-gradient"],
        paths=["func.vmap_in_dims", "range.grad_of_sum", "range.vmap_grad_in_dims"],
        batch_sizes=[7],
        devices=["cpu"],
        repeats=1,
        warmup=0,
        jax=False,
        memory=False,
    )
    assert [r.status for r in report.results] == ["pass"] * 3
    assert {r.computes for r in report.results} == {"jacobian", "gradient"}


def test_draw_points_fixes_every_input_but_the_first() -> None:
    import torch

    from verijac import get_case
    from verijac._bench import draw_points

    case = get_case("seed_batched_gradient")
    pts = draw_points(case, 50, dtype=torch.float32, device="cpu", seed=3, fixed_rest=True)
    assert len(set(pts[0].tolist())) == 50
    for x in pts[1:]:
        assert bool((x == x[0]).all())
    lo, hi = case.variables[0].domain.sample_bounds()
    assert bool(((pts[0] >= lo) & (pts[0] <= hi)).all())


def test_a_method_that_cannot_apply_is_unsupported_with_the_reason() -> None:
    from verijac import get_case

    report = bench(
        [get_case("seed_tuple_io")],
        modes=["range-gradient"],
        paths=["range.grad_of_sum", "func.vmap_in_dims"],
        batch_sizes=[3],
        devices=["cpu"],
        repeats=1,
        warmup=0,
        jax=False,
        memory=False,
    )
    by = {r.method: r for r in report.results}
    assert by["range.grad_of_sum"].status == "unsupported"
    assert "scalar output" in by["range.grad_of_sum"].reason
    assert by["func.vmap_in_dims"].status == "pass"
    assert by["func.vmap_in_dims"].theory == 3.0  # min(n, m) for a 3 → 3 Jacobian


# -- JAX -----------------------------------------------------------------------------------------


def test_jax_missing_gives_a_clear_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now raises ImportError
    code, _, err = _run(capsys, "bench", "--case", "seed_batched_gradient", *QUICK, "--jax")
    assert code == 2
    line = _error_line(err)
    assert "jax, which is not installed" in line
    assert 'pip install "verijac[jax]"' in line and "--no-jax" in line


def test_without_jax_the_default_run_says_jax_was_not_timed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)
    code, out, _ = _run(
        capsys,
        "bench",
        "--case",
        "seed_batched_gradient",
        *QUICK,
        "--mode",
        "paths",
        "--path",
        "func.vjp",
    )
    assert code == 0
    assert "JAX not timed: jax is not installed" in out


def test_jax_lowering_matches_the_exact_derivatives() -> None:
    pytest.importorskip("jax", reason="jax is not installed (pip install 'verijac[jax]')")
    from verijac import get_case

    cases = [get_case("seed_batched_gradient"), get_case("seed_matrix_square")]
    report = bench(
        cases,
        paths=["jax.*"],
        batch_sizes=[3],
        devices=["cpu"],
        dtypes=["float64"],  # the lowering must honour float64 (jax_enable_x64)
        repeats=1,
        warmup=0,
        jax=True,
        memory=False,
    )
    statuses = {(r.case, r.method): r.status for r in report.results}
    for name in ("jax.grad", "jax.jacrev", "jax.jacfwd", "jax.jvp", "jax.vjp"):
        assert statuses["seed_batched_gradient", name] == "pass"
    assert statuses["seed_batched_gradient", "jax.vmap_grad_in_dims"] == "pass"
    assert statuses["seed_batched_gradient", "jax.jvp_range"] == "pass"
    # A 2×2 matrix in and out: the flat (m, n) layout matches the exact Jacobian's.
    assert statuses["seed_matrix_square", "jax.jacrev"] == "pass"
    assert statuses["seed_matrix_square", "jax.grad"] == "unsupported"
    assert {r.framework for r in report.results} == {"jax"}
    assert report.jax_floors


def test_jax_lowering_of_a_layer_is_one_matmul_and_exact() -> None:
    pytest.importorskip("jax", reason="jax is not installed (pip install 'verijac[jax]')")
    import random

    import sympy

    from verijac import Case, array
    from verijac._bench_jax import lower

    rng = random.Random(1)
    x = array("x", (8,))
    rows = [
        sympy.sin(sympy.Add(*[sympy.Float(rng.uniform(-1, 1)) * x[j] for j in range(8)]))
        for _ in range(6)
    ]
    case = Case("bench_layer", inputs={"x": x}, outputs=sympy.Array(rows), domain={"x": (-1, 1)})
    assert lower(case).__name__ == "layer"  # sin(-u) = -sin(u) rows too: a few templates
    report = bench(
        [case],
        modes=["paths"],
        paths=["jax.jacrev", "jax.jvp"],
        batch_sizes=[4],
        devices=["cpu"],
        repeats=1,
        warmup=0,
        jax=True,
        memory=False,
    )
    assert [r.status for r in report.results] == ["pass", "pass"]


# -- usage errors and helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bench"], "--case NAME"),
        (["bench", "--case", "seed_batched_gradient", "--batch-sizes", "0"], "batch sizes"),
        (["bench", "--case", "seed_batched_gradient", "--path", "no.such"], "no.such"),
        (["bench", "--case", "seed_batched_gradient", "--mode", "fast"], "fast"),
        (["bench", "--case", "no_such_case"], "no_such_case"),
        (["bench", "--case", "seed_batched_gradient", "--dtype", "int8"], "int8"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, _, err = _run(capsys, *argv, "--no-jax", "--no-progress")
    assert code == 2
    assert needle in _error_line(err)


def test_batch_sizes_accept_thousands() -> None:
    assert batch_sizes("1,10,1k,10_000") == [1, 10, 1000, 10000]


def test_mode_names_match_the_modes() -> None:
    assert set(MODE_NAMES) == {*MODES, "all"}


def test_measure_gives_the_median_of_samples_of_one_call() -> None:
    calls = []
    timing = measure(lambda: calls.append(1), sync=lambda: None, warmup=2, repeats=3, estimate=1.0)
    assert timing.samples == 3
    assert 0 < timing.q25 <= timing.median <= timing.q75 < 1e-3
    assert len(calls) > 5  # a fast call is repeated within each sample


def test_fmt_time_picks_the_unit() -> None:
    assert [fmt_time(x) for x in (2.5, 3e-3, 4.2e-6, 7e-9, None)] == [
        "2.5 s",
        "3 ms",
        "4.2 µs",
        "7 ns",
        "-",
    ]


def test_the_bench_command_module_imports_cheaply() -> None:
    code = (
        "import sys, verijac._bench_cli\n"
        "heavy = {'torch', 'sympy', 'jax', 'matplotlib', 'rich'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
