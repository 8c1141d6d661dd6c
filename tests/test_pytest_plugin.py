"""The pytest plugin: the --verijac matrix, the verijac_check fixture, and a cheap load."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """Import what the inner sessions use before pytester's in-process runs.

    Those runs drop every module first imported during them; torch cannot be imported twice
    in one process, and dropping its compiler modules makes them report leaks at exit. One
    tiny check imports them all (and loads the case library once, which keeps the runs quick).
    """
    import verijac._checkop  # noqa: F401
    from verijac._runner import check

    check("seed_grad_loop", paths=["func.jacrev"], devices="cpu", dtypes="float64", max_examples=1)


# pytest-benchmark warns when it sees xdist (PYTEST_XDIST_WORKER), and warnings are errors.
BASE = ["-p", "no:cacheprovider", "-p", "no:benchmark"]
MATRIX = [
    *BASE,
    "--verijac",
    "--verijac-case",
    "seed_grad_loop",
    "--verijac-path",
    "func.jacrev",
    "--verijac-device",
    "cpu",
    "--verijac-max-examples",
    "2",
    "--verijac-batch-size",
    "16",
]


def test_matrix_ids_and_outcomes(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*MATRIX, "--verijac-seed", "7", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "verijac: seed=7, profile=ci*",
            "verijac::seed_grad_loop-func.jacrev-cpu-float64 PASSED*",
            "verijac::seed_grad_loop-func.jacrev-cpu-float32 PASSED*",
        ]
    )


def test_reference_digits_reach_the_matrix_and_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fixture(verijac_check):
            report = verijac_check("seed_grad_loop", paths=["func.jacrev"], devices="cpu")
            assert report.settings["reference"] == "mpmath at 20 digits, rounded to float64"
        """
    )
    result = pytester.runpytest(
        *MATRIX, "--verijac-seed", "7", "--verijac-reference-digits", "20", "-v"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["verijac: seed=7, profile=ci, reference: mpmath at 20 digits*"])
    bad = pytester.runpytest(*MATRIX, "--verijac-reference-digits", "5")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*expected an integer from 17 to 1000*"])


def test_matrix_skips_unsupported_and_honours_keyword_selection(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        *MATRIX, "--verijac-path", "func.grad", "--verijac-dtype", "float64", "-k", "grad", "-rs"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED * unsupported: path 'func.grad' requires a scalar output*"]
    )


def test_matrix_is_not_collected_without_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest(*BASE, "--verijac-seed", "1")
    result.assert_outcomes(passed=1)
    # A matrix option without --verijac would silently select nothing: a usage error.
    result = pytester.runpytest(*BASE, "--verijac-case", "seed_grad_loop")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_unknown_case_is_one_collection_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*BASE, "--verijac", "--verijac-case", "no_such")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["verijac: error: no case named 'no_such'*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_fixture_fails_a_planted_bug_and_passes_its_twin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        textwrap.dedent(
            """
            import torch

            from verijac import Case, array

            X = array("x", (2,))


            class WrongSquare(torch.autograd.Function):
                @staticmethod
                def forward(ctx, x):
                    ctx.save_for_backward(x)
                    return x * x

                @staticmethod
                def backward(ctx, grad):
                    (x,) = ctx.saved_tensors
                    return grad * 3 * x  # planted bug: the derivative is 2x


            def make(impl):
                return Case(
                    "fixture_square",
                    inputs={"x": X},
                    outputs=X.applyfunc(lambda e: e**2),
                    domain={"x": (-2, 2)},
                    torch_impl=impl,
                )


            OPTIONS = dict(paths=["reverse.grad_loop"], dtypes=["float64"], devices=["cpu"])


            def test_wrong(verijac_check):
                verijac_check(make(WrongSquare.apply), **OPTIONS)


            def test_right(verijac_check):
                report = verijac_check(make(lambda x: x * x), **OPTIONS)
                assert [r.status for r in report.records] == ["pass"]


            def test_op(verijac_check):
                verijac_check("seed_grad_loop", op=WrongSquare.apply, **OPTIONS)
            """
        )
    )
    result = pytester.runpytest(*BASE, "--verijac-max-examples", "2", "--verijac-batch-size", "16")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*MISMATCH: case 'fixture_square', path 'reverse.grad_loop'*",
            "*reproduce: verijac check*",
            "*MISMATCH: case 'seed_grad_loop', path 'reverse.grad_loop'*",
        ]
    )
    result.stdout.no_fnmatch_line("*def run(*")  # __tracebackhide__: the user's frame only


def test_loading_the_plugin_imports_neither_torch_nor_sympy(tmp_path: Path) -> None:
    test_file = tmp_path / "test_light.py"
    test_file.write_text("def test_light():\n    assert True\n")
    code = (
        "import sys, pytest\n"
        f"rc = pytest.main(['-q', *{BASE!r}, {str(test_file)!r}])\n"
        "assert 'verijac.pytest_plugin' in sys.modules, 'plugin not loaded'\n"
        "print(int(rc), 'torch' in sys.modules, 'sympy' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTEST_ADDOPTS": ""},
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "0 False False"


def test_runtime_device_maps_xdist_workers_to_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from verijac.pytest_plugin import runtime_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert runtime_device("cuda") == "cuda:1"
    assert runtime_device("cpu") == "cpu"
    assert runtime_device("cuda:0") == "cuda:0"
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert runtime_device("cuda") == "cuda"


def test_matrix_ids_are_the_same_on_every_xdist_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [*MATRIX[:-4], "--verijac-path", "func.grad", "--verijac-case", "seed_*", "--co", "-q"]
    ids = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        result = pytester.runpytest(*args)
        ids.append([line for line in result.stdout.lines if line.startswith("verijac::")])
    assert ids[0] == ids[1] == sorted(ids[0], key=lambda i: i.split("-")[0])
    assert len(ids[0]) == 4 * 2 * 2  # cases × paths × dtypes


@pytest.mark.slow
def test_matrix_under_xdist(pytester: pytest.Pytester) -> None:
    """A real ``-n 2`` run: workers must collect the same items and share the seed."""
    pytest.importorskip("xdist")
    result = pytester.runpytest_subprocess(*MATRIX, "-n", "2", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*PASSED verijac::seed_grad_loop-func.jacrev-cpu-float*"])


# -- hostile input (issue 10, item 16) --------------------------------------------------------------


def test_matrix_options_without_verijac_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--verijac-case", "seed_*")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--verijac-case select(s) the --verijac matrix*"])


def test_a_bad_fixture_argument_is_one_clear_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_bad(verijac_check):
            verijac_check("elementwise_sin", bogus=1)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*verijac_check: unknown option(s) 'bogus'*"])
    assert "Traceback" not in result.stdout.str()
