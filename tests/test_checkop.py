"""`verijac.check_op` / `assert_op`: every kind of op, require semantics, errors and messages."""

from __future__ import annotations

from typing import Any

import pytest
import sympy
import torch
from planted_ops import BY_NAME

import verijac
from verijac._checkop import NO_AUTOGRAD_REASON, assert_op, check_op, normalise_require, op_spec

x, y = verijac.scalar("x"), verijac.scalar("y")
XSIN = verijac.Case("checkop_xsin", {"x": x}, x * sympy.sin(x), {"x": (-3, 3)})
FAST = {"seed": 0, "max_examples": 1, "batch_size": 16}
PATHS = [
    "reverse.vjp_random",
    "forward.dual",
    "func.vmap_jacrev",
    "higher.double_backward",
    "contract",
]


def _status(report: verijac.Report, dtype: str = "float64") -> dict[str, str]:  # type: ignore[name-defined]
    return {r.path: r.status for r in report.records if r.dtype == dtype}


def xsin(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sin(x)


class XSinNoJvp(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * torch.sin(x)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (torch.sin(x) + x * torch.cos(x))


class XSinOldStyle(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * torch.sin(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (torch.sin(x) + x * torch.cos(x))


@torch.library.custom_op("verijac_test::xsin", mutates_args=())
def xsin_op(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sin(x)


def _xsin_setup(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    ctx.save_for_backward(inputs[0])


def _xsin_backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
    (x,) = ctx.saved_tensors
    return grad * (torch.sin(x) + x * torch.cos(x))


xsin_op.register_autograd(_xsin_backward, setup_context=_xsin_setup)


@torch.library.custom_op("verijac_test::xsin_no_autograd", mutates_args=())
def xsin_no_autograd(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sin(x)


# -- op kinds ------------------------------------------------------------------------------------
def test_plain_torch_function_passes() -> None:
    report = check_op(xsin, XSIN, **FAST)
    assert report.passed, report
    # Everything check-op runs by default applies to a plain function (strict mode, which
    # needs an unused input, runs under check-op only when named).
    assert {p for p, s in _status(report).items() if s != "pass"} == set()
    assert "functional.jacobian_strict" not in _status(report)


def test_function_without_jvp_is_unsupported_in_forward_mode_not_failing() -> None:
    report = check_op(XSinNoJvp.apply, XSIN, paths=PATHS, **FAST)
    assert report.passed, report
    status = _status(report)
    assert status["forward.dual"] == "unsupported"
    assert status["reverse.vjp_random"] == status["func.vmap_jacrev"] == "pass"
    reason = next(r.reason for r in report.records if r.path == "forward.dual")
    assert "jvp" in reason


def test_function_with_jvp_and_generated_vmap_rule_passes_forward_mode_and_vmap() -> None:
    op = BY_NAME["scaled_backward"].correct
    report = check_op(op, BY_NAME["scaled_backward"].case, paths=PATHS, **FAST)
    assert report.passed, report
    status = _status(report)
    assert status["forward.dual"] == status["contract.vmap_consistency"] == "pass"


def test_function_with_vmap_staticmethod() -> None:
    planted = BY_NAME["wrong_vmap_rule"]
    assert check_op(planted.correct, planted.case, paths=PATHS, **FAST).passed
    assert (
        _status(check_op(planted.buggy, planted.case, paths=PATHS, **FAST))[
            "contract.vmap_consistency"
        ]
        == "mismatch"
    )


def test_old_style_function_is_unsupported_by_torch_func_only() -> None:
    report = check_op(XSinOldStyle.apply, XSIN, paths=PATHS, **FAST)
    assert report.passed, report
    status = _status(report)
    assert status["reverse.vjp_random"] == "pass"
    assert status["func.vmap_jacrev"] == "unsupported"


def test_custom_op_with_register_autograd() -> None:
    report = check_op(xsin_op, XSIN, paths=PATHS, **FAST)
    assert report.passed, report
    assert _status(report)["reverse.vjp_random"] == "pass"


def test_custom_op_without_autograd_is_unsupported_with_a_clear_reason() -> None:
    report = check_op(xsin_no_autograd, XSIN, paths=PATHS, **FAST)
    status = _status(report)
    assert status["contract.values"] == "pass"  # the value is still checked
    derivative = [r for r in report.records if r.family != "contract" and r.dtype == "float64"]
    assert derivative and all(r.status == "unsupported" for r in derivative)
    assert all(NO_AUTOGRAD_REASON in r.reason for r in derivative)
    with pytest.raises(AssertionError, match="nothing was verified"):
        assert_op(xsin_no_autograd, XSIN, paths=PATHS, **FAST)


def test_multi_input_op() -> None:
    planted = BY_NAME["swapped_partials"]
    assert check_op(planted.correct, planted.case, paths=PATHS, **FAST).passed
    assert not check_op(planted.buggy, planted.case, paths=PATHS, **FAST).passed


def test_tuple_returning_op_on_a_shipped_case_by_name() -> None:
    def op(x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x1 + x2, x3 * x1, x2**3

    assert check_op(op, "seed_tuple_io", paths=PATHS, **FAST).passed

    def wrong(x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x1 + x2, x3 * x1, x2**3 + 1e-3 * x2

    report = check_op(wrong, "seed_tuple_io", paths=PATHS, **FAST)
    assert _status(report)["reverse.vjp_random"] == "mismatch"
    assert _status(report)["contract.values"] == "mismatch"


def test_wrong_forward_value_is_a_mismatch() -> None:
    report = check_op(lambda x: x * torch.sin(x) + 1e-3, XSIN, paths=["contract.values"], **FAST)
    assert _status(report)["contract.values"] == "mismatch"
    assert "forward value is wrong" in report.failures[0].reason


# -- require ---------------------------------------------------------------------------------------
def test_required_capability_turns_unsupported_into_failure() -> None:
    report = check_op(XSinNoJvp.apply, XSIN, paths=PATHS, require="forward", **FAST)
    assert not report.passed
    failure = next(r for r in report.failures if r.path == "forward.dual")
    assert failure.status == "mismatch" and "required capability forward_ad" in failure.reason


def test_require_aliases_and_unknown_names() -> None:
    assert normalise_require(("forward", "double-backward", "vmap")) == {
        "forward_ad",
        "double_backward",
        "vmap",
    }
    with pytest.raises(verijac.UsageError, match="require must name capabilities"):
        check_op(xsin, XSIN, require=("backwards",))


# -- validation ----------------------------------------------------------------------------------
def test_usage_errors_at_the_boundary() -> None:
    with pytest.raises(verijac.UsageError, match="op must be callable"):
        check_op(42, XSIN)  # type: ignore[arg-type]
    with pytest.raises(verijac.UnknownCaseError, match="no case named"):
        check_op(xsin, "seed_tuple_iox")
    with pytest.raises(verijac.UsageError, match=r"case must be a verijac\.Case"):
        check_op(xsin, 3)  # type: ignore[arg-type]
    with pytest.raises(verijac.UsageError, match="one tensor per input"):
        check_op(lambda a, b: a, XSIN)
    with pytest.raises(verijac.UsageError, match="describes one tensor"):
        check_op(lambda a: (a, a), XSIN)


# -- assert_op -------------------------------------------------------------------------------------
def test_assert_op_message_is_the_report_with_reproduction() -> None:
    planted = BY_NAME["scaled_backward"]
    with pytest.raises(AssertionError) as info:
        assert_op(planted.buggy, planted.case, paths=["reverse.vjp_random"], **FAST)
    text = str(info.value)
    assert "verijac: FAILED" in text and "MISMATCH" in text
    assert "--case planted_scaled_backward --path reverse.vjp_random" in text
    assert assert_op(planted.correct, planted.case, paths=["reverse.vjp_random"], **FAST).passed


def test_op_spec_names_importable_ops() -> None:
    assert op_spec(BY_NAME["ignores_scale"].buggy) == "planted_ops:IgnoresScale.apply"
    assert op_spec(xsin) == f"{__name__}:xsin"
    assert op_spec(xsin_op) == f"{__name__}:xsin_op"
    assert op_spec(lambda t: t) is None


# -- devices -------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_custom_function_on_cuda() -> None:
    report = check_op(XSinNoJvp.apply, XSIN, devices="cuda", paths=PATHS, **FAST)
    assert report.passed, report
    assert {r.device for r in report.records} == {"cuda"}
