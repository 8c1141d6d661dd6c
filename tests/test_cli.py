"""The `verijac` command: listings, show, check and check-op, exit codes, files, interrupts."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import verijac
from verijac import _runner
from verijac._cli import main
from verijac._cli_check import _Progress
from verijac._report import Report, write_text_atomic

FAST = ["--max-examples", "2", "--batch-size", "16", "--device", "cpu"]
PATHS = ["--path", "reverse.grad_loop", "--path", "func.jacrev"]

# A custom op whose backward is 3x instead of 2x: the kind of bug verijac exists to catch.
PLANTED = textwrap.dedent(
    '''
    """A case whose torch implementation has a wrong custom backward."""
    import torch

    from verijac import Case, array


    class _WrongSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x  # planted bug: d(x**2)/dx is 2x


    def square(x):
        return x * x


    X = array("x", (2,))
    CASES = [
        Case(
            "cli_planted_square",
            inputs={"x": X},
            outputs=X.applyfunc(lambda e: e**2),
            domain={"x": (-2, 2)},
            torch_impl=_WrongSquare.apply,
            tags={"planted"},
            description="x² with a wrong custom backward",
        )
    ]
    '''
)


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cases directory with the planted case, loaded once; unregistered afterwards so
    later tests that check every registered case do not meet the planted bug."""
    from verijac import _registry

    d = tmp_path_factory.mktemp("cases")
    (d / "planted.py").write_text(PLANTED)
    yield d
    _registry._CASES.pop("cli_planted_square", None)
    _registry._SOURCES.pop("cli_planted_square", None)
    _registry._LOADED_DIRS.discard(d.resolve())


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("verijac: error: ")
    assert "Traceback" not in err
    return lines[0]


# -- list and show ------------------------------------------------------------------------------


def test_list_shows_cases_with_shapes_tags_and_descriptions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "list", "seed_*")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {
        "seed_batched_gradient",
        "seed_grad_loop",
        "seed_matrix_square",
        "seed_tuple_io",
    }
    assert "x[2,2]" in rows["seed_matrix_square"] and "2×2" in rows["seed_matrix_square"]
    assert "(scalar, scalar, scalar)" in rows["seed_tuple_io"]
    assert "(seed 000)" in rows["seed_tuple_io"]


def test_list_filters_by_tag_and_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list", "--tag", "tuple", "--json")
    assert code == 0
    data = json.loads(out)
    assert [c["name"] for c in data if c["name"].startswith("seed_")] == ["seed_tuple_io"]
    assert all("tuple" in c["tags"] for c in data)
    assert data[0]["inputs"][0] == {"name": "x1", "shape": [], "domain": "[-10, 10]"}


def test_list_paths_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list", "--paths", "func")
    assert code == 0
    assert out.splitlines()[0].split() == ["NAME", "FAMILY", "COMPUTES", "REQUIRES", "USES", "CALL"]
    assert any(
        line.startswith("func.jacrev ") and "torch.func.jacrev" in line for line in out.splitlines()
    )
    code, out, _ = _run(capsys, "list", "--paths", "--json")
    paths = {p["name"]: p for p in json.loads(out)}
    assert paths["func.jacrev"]["family"] == "func"
    assert paths["func.jacrev"]["computes"] == "jacobian"
    assert set(paths["func.jacrev"]) >= {"requires", "uses", "call", "opt_in"}


def test_show_prints_inputs_domain_outputs_jacobian_and_known_points(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "show", "seed_tuple_io", "--plain")
    assert code == 0
    assert "x1    scalar  [-10, 10]" in out
    assert "d out[1] / d x1 = x3" in out
    assert "d out[2] / d x2 = 3*x2**2" in out
    assert "jacobian: ((1, 1, 0), (5, 0, 3), (0, 48, 0))" in out


# -- usage errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["check", "--bogus"], "unrecognized arguments: --bogus"),
        (["check", "--case", "no_such_case"], "no case named 'no_such_case'"),
        (["check", "--case", "seed_grad_loop", "--dtype", "float8"], "float8"),
        (["check", "--case", "seed_grad_loop", "--device", "tpu:x"], "tpu:x"),
        (["check", "--case", "seed_grad_loop", "--path", "no.such_path"], "no path named"),
        (["check", "--max-examples", "0"], "--max-examples"),
        (["show", "no_such_case"], "no case named"),
        (["list", "--cases-dir", "/no/such/dir"], "/no/such/dir"),
        (["check-op", "no_such_module_xyz:f", "--case", "seed_grad_loop"], "no_such_module_xyz"),
        (["check-op", "missing-colon", "--case", "seed_grad_loop"], "MODULE:ATTR"),
        ([], "choose a command"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, _, err = _run(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("verijac: error: ")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_broken_cases_module_is_a_usage_error_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "broken.py").write_text("x = 1\nraise RuntimeError('boom')\n")
    code, _, err = _run(capsys, "list", "--cases-dir", str(tmp_path))
    assert code == 2
    line = _one_error_line(err)
    assert "broken.py:2" in line and "RuntimeError: boom" in line


def test_internal_error_is_blamed_on_verijac_with_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in verijac is never reported as the user's usage error (issue 11)."""
    from verijac import _functions
    from verijac._errors import InternalError

    def broken() -> str:
        raise InternalError("the function map lost an entry")

    monkeypatch.setattr(_functions, "coverage_markdown", broken)
    code, _, err = _run(capsys, "functions")
    assert code == 3
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [
        "verijac: internal error (a bug in verijac, not in your input): the function map lost "
        "an entry; please report it with the command you ran"
    ]


# -- check -------------------------------------------------------------------------------------


def test_check_passes_prints_seed_first_summary_and_writes_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    json_file, junit_file = tmp_path / "out" / "r.json", tmp_path / "out" / "r.xml"
    json_file.parent.mkdir()
    code, out, err = _run(
        capsys,
        "check", "--case", "seed_grad_loop", *PATHS, *FAST, "--seed", "1234",
        "--json", str(json_file), "--junit", str(junit_file),
    )  # fmt: skip
    assert code == 0, out + err
    assert out.splitlines()[0].startswith("verijac check: seed=1234")
    assert "reverse.grad_loop" in out and "func.jacrev" in out  # the summary table
    assert out.splitlines()[-1].startswith("verijac check: PASSED: 4 checks (4 pass)")
    report = json.loads(json_file.read_text())
    assert report["seed"] == 1234
    assert {(r["path"], r["dtype"], r["status"]) for r in report["records"]} == {
        (p, d, "pass") for p in ("reverse.grad_loop", "func.jacrev") for d in ("float64", "float32")
    }
    suite = ET.parse(junit_file).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "0"
    assert sorted(os.listdir(json_file.parent)) == ["r.json", "r.xml"]  # no temp files left


def test_unsupported_is_not_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    def check(*paths: str) -> tuple[int, str]:
        args = [a for p in paths for a in ("--path", p)]
        code, out, _ = _run(capsys, "check", "--case", "seed_grad_loop", *args,
                            "--dtype", "float64", *FAST)  # fmt: skip
        return code, out.splitlines()[-1]

    # Nothing but an unsupported path: nothing was checked, which is said and is not a pass.
    code, last = check("func.grad")
    assert code == 1 and "1 unsupported" in last
    # Beside a path that ran, an unsupported one does not fail the run.
    code, last = check("func.grad", "func.jacrev")
    assert code == 0 and "1 pass, 1 unsupported" in last


def test_planted_bug_exits_1_and_its_reproduction_fails_the_same_way(
    capsys: pytest.CaptureFixture[str], cases_dir: Path
) -> None:
    argv = ["check", "--cases-dir", str(cases_dir), "--case", "cli_planted_square"]
    code, out, _ = _run(capsys, *argv, "--path", "reverse.grad_loop", "--dtype", "float64", *FAST)
    assert code == 1
    assert "MISMATCH: case 'cli_planted_square', path 'reverse.grad_loop'" in out
    assert "FAILED" in out.splitlines()[-1]
    line = next(x for x in out.splitlines() if x.strip().startswith("reproduce: "))
    words = shlex.split(line.split("reproduce: ", 1)[1])
    assert words[:2] == ["verijac", "check"]
    code2, out2, _ = _run(capsys, *words[1:], "--cases-dir", str(cases_dir))
    assert code2 == 1
    failure = [x for x in out.splitlines() if "minimal failing point" in x or "expected" in x]
    assert failure and all(x in out2 for x in failure)


def test_check_op_imports_module_attr_from_cwd(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "myops_cli.py").write_text("def square(x):\n    return x * x\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    code, out, _ = _run(
        capsys, "check-op", "myops_cli:square", "--case", "seed_grad_loop", "--path", "func.jacrev",
        "--dtype", "float64", *FAST,
    )  # fmt: skip
    assert code == 0, out
    assert out.splitlines()[0].startswith("verijac check-op: seed=")
    assert "1 pass" in out.splitlines()[-1]


def test_interrupt_keeps_completed_records_and_exits_130(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = _runner.run

    def interrupted(*args: Any, on_record: Callable[[Any], Any], **kwargs: Any) -> Any:
        def stop_after_first(record: Any) -> None:
            on_record(record)
            raise KeyboardInterrupt

        return real_run(*args, on_record=stop_after_first, **kwargs)

    monkeypatch.setattr(_runner, "run", interrupted)
    json_file, junit_file = tmp_path / "r.json", tmp_path / "r.xml"
    code, out, _ = _run(
        capsys, "check", "--case", "seed_grad_loop", *PATHS, *FAST,
        "--json", str(json_file), "--junit", str(junit_file),
    )  # fmt: skip
    assert code == 130
    assert "INTERRUPTED: 1 checks" in out.splitlines()[-1]
    assert len(json.loads(json_file.read_text())["records"]) == 1
    assert ET.parse(junit_file).getroot().find("testsuite").get("tests") == "1"  # type: ignore[union-attr]


# -- progress and files ------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(case: str, status: str = "pass") -> Any:
    from verijac._report import Record

    return Record(case, "p", "reverse", "jacobian", "cpu", "float64", status, 1, 0)


def test_progress_bar_redraws_on_a_tty_and_prints_lines_otherwise() -> None:
    tty = _Tty()
    bar = _Progress(4, 2, enabled=True, stream=tty)
    bar.start -= 10  # past the quiet start-up delay
    bar.update(_record("a"))
    bar.finish()
    assert "\r[" in tty.getvalue() and "1/4 checks" in tty.getvalue()
    pipe = io.StringIO()
    lines = _Progress(2, 2, enabled=True, stream=pipe)
    for r in (_record("a"), _record("b", "mismatch")):
        lines.update(r)
    lines.finish()
    assert [x.split(" (")[0] for x in pipe.getvalue().splitlines()] == [
        "verijac: [1/2] a: 1 pass",
        "verijac: [2/2] b: 1 mismatch",
    ]
    quiet = io.StringIO()
    off = _Progress(2, 2, enabled=False, stream=quiet)
    off.update(_record("a"))
    off.finish()
    assert quiet.getvalue() == ""


def test_report_files_are_never_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")

    def broken(self: Report) -> str:
        raise RuntimeError("serialisation failed")

    report = Report(records=[], seed=1, settings={})
    with monkeypatch.context() as m:
        m.setattr(Report, "to_json", broken)
        with pytest.raises(RuntimeError):
            report.write_json(target)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    report.write_json(target)
    assert json.loads(target.read_text())["seed"] == 1 and list(tmp_path.iterdir()) == [target]
    write_text_atomic(tmp_path / "x.txt", "text")
    assert (tmp_path / "x.txt").read_text() == "text"
    with pytest.raises(verijac.UsageError, match="cannot write"):
        report.write_junit(tmp_path / "missing-dir" / "r.xml")


# -- entry points ------------------------------------------------------------------------------


def test_python_m_verijac_list_and_console_script_help() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(
        [sys.executable, "-m", "verijac", "list", "seed_grad_loop"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("seed_grad_loop ")
    script = Path(sys.executable).with_name("verijac")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "verijac"]
    done = subprocess.run([*cmd, "--help"], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0
    assert all(c in done.stdout for c in ("list", "show", "check", "check-op"))


@pytest.mark.parametrize(
    ("preset", "torch_first", "expected"),
    [(None, False, "1"), ("0", False, "0"), (None, True, None)],
)
def test_the_command_asks_torch_for_huge_pages_unless_told_or_too_late(
    preset: str | None, torch_first: bool, expected: str | None
) -> None:
    """`main` sets ``THP_MEM_ALLOC_ENABLE=1`` for torch's allocator (where the kernel has
    transparent huge pages), keeps a value the user set, and leaves the environment alone
    once torch is imported (torch has read it)."""
    script = (
        ("import torch\n" if torch_first else "")
        + "import os\nfrom verijac._cli import main\nmain(['--version'])\n"
        + "print(repr(os.environ.get('THP_MEM_ALLOC_ENABLE')))\n"
    )
    from verijac._cli import THP_SETTINGS

    if not os.path.exists(THP_SETTINGS) and expected == "1":
        pytest.skip("this kernel has no transparent huge pages: the variable is not set")
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if preset is not None:
        env["THP_MEM_ALLOC_ENABLE"] = preset
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == repr(expected)


def test_no_huge_pages_asked_for_where_the_kernel_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the kernel's setting torch's madvise would fail and warn: nothing is set."""
    import verijac._cli as cli

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    monkeypatch.setattr(cli, "THP_SETTINGS", "/nonexistent/transparent_hugepage/enabled")
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    cli.prefer_huge_pages()
    assert "THP_MEM_ALLOC_ENABLE" not in os.environ
