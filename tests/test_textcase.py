"""Text (TOML) cases, extra case directories, and packaging of the shipped cases."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sympy

import verijac
from verijac import CaseError, ParseError
from verijac._textcase import case_from_text

GOOD = """
name = "t_poly"
tags = ["text"]
outputs = ["x*y", "[[x, y], [y**2, 3]]"]
exclude = ["x - y"]

[inputs]
x = []
y = []

[domain]
x = [-1, 1]
y = { lo = 0, hi = 2, left_open = true }

[[known]]
at = { x = 1, y = 2 }
value = [2, [[1, 2], [4, 3]]]
"""


def test_text_case_builds_like_python() -> None:
    case = case_from_text(GOOD)
    assert case.tuple_outputs and case.outputs[1].shape == (2, 2)
    x, y = case.in_symbols
    assert case.jacobian()[0] == (y, x)
    assert case.domain["y"].left_open


def test_shipped_text_case_is_registered() -> None:
    case = verijac.get_case("elementwise_softplus_text")
    (x,) = case.in_symbols
    assert sympy.simplify(case.jacobian() - 1 / (1 + sympy.exp(-x))) == 0


@pytest.mark.parametrize(
    ("text", "error", "needle"),
    [
        (
            "name = 'a'\noutputs = \"__import__('os').system('touch pwned')\"\n[inputs]\nx=[]\n[domain]\nx=[0,1]",
            ParseError,
            "plain known function name",
        ),
        (
            "name = 'a'\noutputs = 'x.real'\n[inputs]\nx=[]\n[domain]\nx=[0,1]",
            ParseError,
            "attribute access",
        ),
        ("name = 'a' outputs", ParseError, "not valid TOML"),
        (
            "name = 'a'\nbogus = 1\noutputs='x'\n[inputs]\nx=[]\n[domain]\nx=[0,1]",
            CaseError,
            "unknown keys",
        ),
        ("name = 'a'\noutputs='x'\n[inputs]\nx='matrix'\n[domain]\nx=[0,1]", CaseError, "inputs.x"),
        (
            "outputs='x'\n[inputs]\nx=[]\n[domain]\nx=[0,1]",
            CaseError,
            "missing required key 'name'",
        ),
        ("name = 'a'\noutputs='x*q'\n[inputs]\nx=[]\n[domain]\nx=[0,1]", ParseError, "q"),
    ],
)
def test_bad_text_is_refused_clearly(
    text: str, error: type, needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=needle):
        case_from_text(text)
    assert not (tmp_path / "pwned").exists()


class Cube(sympy.Function):
    """A user's own function, registered with `verijac.register_function` in a test."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return 3 * self.args[0] ** 2


CUBE_CASE = "name = 't_cube'\noutputs = 'cube(x) + Cube(2*x)'\n[inputs]\nx=[]\n[domain]\nx=[0,1]"


def test_registered_function_reaches_text_cases() -> None:
    """`register_function` makes a function callable from a TOML case, by its class name and
    its lower-case name, and `unregister_function` takes it away again (issue 11)."""
    import torch

    with pytest.raises(ParseError, match=r"register_function\(cube, torch_impl\)"):
        case_from_text(CUBE_CASE)
    verijac.register_function(Cube, lambda t: t**3)
    try:
        case = case_from_text(CUBE_CASE)
        (x,) = case.in_symbols
        assert case.out_exprs == (Cube(x) + Cube(2 * x),)
        jac = case.torch_jacobian()(torch.tensor([0.5], dtype=torch.float64))
        assert float(jac[0]) == pytest.approx(3 * 0.25 + 6 * 1.0)
    finally:
        verijac.unregister_function(Cube)
    with pytest.raises(ParseError, match="unknown function `cube`"):
        case_from_text(CUBE_CASE)


def test_load_cases_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(GOOD.replace("t_poly", "t_dir_poly"), encoding="utf-8")
    (tmp_path / "mine_py.py").write_text(
        "import sympy, verijac\nx = verijac.scalar('x')\n"
        "CASES = [verijac.Case('t_dir_py', inputs={'x': x}, outputs=sympy.cos(x), domain={'x': (-1, 1)})]\n",
        encoding="utf-8",
    )
    names = verijac.load_cases(tmp_path)
    assert sorted(names) == ["t_dir_poly", "t_dir_py"]
    assert verijac.get_case("t_dir_py").jacobian() == -sympy.sin(
        verijac.get_case("t_dir_py").in_symbols[0]
    )
    with pytest.raises(verijac.UsageError, match="does not exist"):
        verijac.load_cases(tmp_path / "missing")


def test_corrupt_case_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe not text")
    with pytest.raises(ParseError, match=r"bad\.toml"):
        verijac.load_case_file(bad)


def test_wheel_ships_the_case_library(tmp_path: Path) -> None:
    root = Path(__file__).parent.parent
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("verijac-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "verijac_cases/seeds.py",
        "verijac_cases/elementwise_softplus_text.toml",
        "verijac/py.typed",
    } <= names


def test_cases_found_outside_the_checkout(tmp_path: Path) -> None:
    code = (
        "import verijac; print(len(verijac.list_cases()), verijac.get_case('seed_tuple_io').name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    count, name = out.stdout.split()
    assert int(count) >= 30 and name == "seed_tuple_io"


BASE = "name = 'a'\noutputs = 'x'\n[inputs]\nx = []\n"


@pytest.mark.parametrize(
    ("tail", "needle"),
    [
        ("margin = 'abc'\n[domain]\nx = [0, 1]", "margin"),
        ("[domain]\nx = ['sqrt(-1)', 1]", "real number"),
        ("exclude = 5\n[domain]\nx = [0, 1]", "list of strings"),
        ("known = 5\n[domain]\nx = [0, 1]", "array of tables"),
        ("[domain]\nx = { lo = 0, hi = 1, exclude = 0 }", "list of numbers"),
        ("[domain]\nx = { lo = 0, hi = 1, left_open = 'false' }", "true or false"),
        ("description = 5\n[domain]\nx = [0, 1]", "description"),
        ("tolerances = [1]\n[domain]\nx = [0, 1]", "tolerances"),
        ("[domain]\nx = [0, 1]\n[[known]]\nat = { x = 0 }\nvjp = [1]", "cotangent, result"),
    ],
)
def test_wrongly_typed_text_is_a_case_error(tail: str, needle: str) -> None:
    text = BASE + tail
    # Top-level keys must come before the first table.
    if not tail.startswith("["):
        key, rest = tail.split("\n", 1)
        text = BASE.replace("[inputs]", key + "\n[inputs]") + rest
    with pytest.raises(verijac.VerijacError, match=needle):
        case_from_text(text)
