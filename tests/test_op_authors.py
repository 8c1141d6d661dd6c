"""What an op author checking third-party autograd.Functions relies on: path exclusion, no
false alarms from capabilities the op lacks, and a report that says what was not verified."""

from __future__ import annotations

from typing import Any

import pytest
import sympy
import torch

import verijac
from verijac._resolve import resolve_paths

SMALL: dict[str, Any] = {"max_examples": 1, "batch_size": 8, "dtypes": "float64", "seed": 1}


def _case() -> verijac.Case:
    x = verijac.scalar("x")
    return verijac.Case("authors_sin", {"x": x}, sympy.sin(x), {"x": (-2, 2)})


class NoJvp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * torch.cos(x)


def test_paths_can_be_excluded() -> None:
    every = {p.name for p in resolve_paths(None)}
    without = {p.name for p in resolve_paths(["!functional.jacobian_strict"])}
    assert every - without == {"functional.jacobian_strict"}
    funcs = {p.name for p in resolve_paths(["func", "!func.linearize", "!func.jvp*"])}
    assert "func.jacrev" in funcs and "func.linearize" not in funcs
    assert not {n for n in funcs if n.startswith("func.jvp")}
    with pytest.raises(verijac.UsageError, match=r"'!func\.nothing' matches no path"):
        resolve_paths(["!func.nothing"])


def test_strict_mode_expectations_are_not_run_on_custom_ops_unless_named() -> None:
    by_default = {p.name for p in resolve_paths(None, command="check-op")}
    assert "functional.jacobian_strict" not in by_default
    assert "functional.jacobian_strict" in {p.name for p in resolve_paths(None)}
    assert {p.name for p in resolve_paths(["functional.jacobian_strict"], command="check-op")}


def test_data_dependent_control_flow_under_linearize_is_unsupported_not_an_error() -> None:
    def branchy(x: torch.Tensor) -> torch.Tensor:
        if torch.any(x > 10):  # never true in the domain: the value is always sin
            return torch.cos(x)
        return torch.sin(x)

    report = verijac.check_op(branchy, _case(), paths=["func.linearize", "func.jvp"], **SMALL)
    by = {r.path: r for r in report.records}
    assert by["func.linearize"].status == "unsupported"
    assert "data-dependent control flow" in by["func.linearize"].reason
    assert by["func.jvp"].status == "pass"


def test_the_report_says_what_was_not_verified_and_how_to_add_it() -> None:
    report = verijac.check_op(NoJvp.apply, _case(), **SMALL)
    assert report.passed
    lines = report.capability_summary()
    assert lines and lines[0].startswith("no forward-mode rule: ")
    assert "add a jvp" in lines[0]
    assert "not verified (unsupported):" in str(report)


def test_a_requirement_of_the_case_is_not_called_a_missing_capability() -> None:
    """``func.vmap_grad`` on a case with several outputs is unsupported because of the case's
    shape; the path's name holds "vmap", which once read as "no vmap support: add a vmap
    staticmethod" for torch.linalg.inv."""
    from verijac import Record, Report

    base = {"case": "c", "family": "func", "computes": "gradient", "device": "cpu"}
    base |= {"dtype": "float64", "points": 0, "seed": 1}
    reason = "path 'func.vmap_grad' requires a scalar output; case 'c' has 4 output element(s)"
    report = Report([Record(path="func.vmap_grad", status="unsupported", reason=reason, **base)])
    (line,) = report.capability_summary()
    assert "vmap support" not in line and "add a vmap" not in line
    assert line.startswith("path 'func.vmap_grad' requires a scalar output")


def test_cli_exclusion_and_summary(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    from verijac._cli import main

    argv = ["check", "--case", "elementwise_sin", "--path", "func", "--path", "!func.linearize"]
    argv += ["--dtype", "float64", "--max-examples", "1", "--batch-size", "4", "--seed", "1"]
    code = main([*argv, "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "func.linearize" not in out
