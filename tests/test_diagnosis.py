"""The report names the cause: failures grouped by the rule they point to, with the error's
shape and where the failing points lie, each stated with its evidence.

The planted-bug suite is the check: every planted bug gets the diagnosis that matches how it
was planted, and no correct twin gets one. Synthetic arrays and records pin the rules.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from planted_ops import BY_NAME, PLANTED, Planted, check_planted

from verijac._diagnosis import Diagnosis, diagnose
from verijac._evidence import coordinate_labels, measure
from verijac._report import Record, Report
from verijac._runfile import RunFileError, parse_run


# -- the planted bugs ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    """The diagnosis a planted bug must get (its first one).

    ``region``: ``(coordinate, magnitude, side, threshold)``: a threshold on the coordinate
    (on its magnitude) separates the failing points (on ``side``) from the passing ones, and
    the planted threshold lies between them.
    """

    cause: str
    shape: str = ""
    factor: float | None = None
    dtypes: tuple[str, ...] = ()
    region: tuple[str, bool, str, float] | None = None
    also: tuple[str, ...] = ()  # causes of further diagnoses


# The buggy ops of `_pair` use the wrong derivative in backward and jvp alike, so forward mode
# fails with reverse mode there: "derivative" (both modes), not "backward".
EXPECTED: dict[str, Expect] = {
    "scaled_backward": Expect("derivative", shape="factor", factor=1.001),
    "wrong_jvp": Expect("jvp"),
    "region_bug": Expect("derivative", region=("x", False, "below", -1.0)),
    "float32_only": Expect("derivative", dtypes=("float32",)),
    "ignores_scale": Expect("cotangent_scaling"),
    "swapped_partials": Expect("backward", shape="swap"),
    "detached_backward": Expect("second_order", shape="zero"),
    "large_magnitude": Expect("derivative", region=("x", True, "above", 50.0)),
    # check_planted draws 2 batches of 32, evaluated together; the bulk piece (63 rows) is
    # called first, then one row alone: the gradient is divided by the 63.
    "batched_only": Expect("batch", shape="factor", factor=1 / 63),
    "tail_sign": Expect("derivative", shape="sign", factor=-1.0, region=("x", False, "above", 2.5)),
    "inplace_cache": Expect("repeat_backward", also=("second_order",)),
    "wrong_vmap_rule": Expect("vmap"),
}


def test_every_planted_bug_has_an_expectation() -> None:
    assert set(EXPECTED) == set(BY_NAME)


def _check(planted: Planted, diagnoses: list[Diagnosis], report: Report) -> None:
    want = EXPECTED[planted.name]
    assert diagnoses, f"{planted.name}: no diagnosis\n{report}"
    first = diagnoses[0]
    assert [d.cause for d in diagnoses] == [want.cause, *want.also], report
    assert first.shape == want.shape, first.text()
    if want.factor is not None:
        assert first.factor is not None and math.isclose(first.factor, want.factor, rel_tol=1e-5)
    assert first.dtypes == want.dtypes, first.text()
    if want.region is None:
        assert first.region is None, first.text()
    else:
        coordinate, magnitude, side, threshold = want.region
        region = first.region
        assert region is not None, first.text()
        assert (region.coordinate, region.magnitude, region.side) == (coordinate, magnitude, side)
        if side == "above":
            assert region.passing[1] <= threshold <= region.failing[0], region
        else:
            assert region.failing[1] <= threshold <= region.passing[0], region
    # Every failure is explained, once.
    keys = [k for d in diagnoses for k in d.records]
    assert sorted(keys) == sorted(r.key for r in report.failures)


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_planted_bug_gets_the_diagnosis_of_how_it_was_planted(planted: Planted) -> None:
    report = check_planted(planted, planted.buggy, 0)
    _check(planted, report.diagnoses(), report)
    # The text leads with the cause, before any per-record detail.
    text = str(report)
    assert text.index("Cause: ") < text.index("MISMATCH: ")


@pytest.mark.parametrize("name", ["tail_sign", "region_bug", "batched_only"])
def test_the_diagnosis_holds_on_another_seed(name: str) -> None:
    planted = BY_NAME[name]
    report = check_planted(planted, planted.buggy, 3)
    _check(planted, report.diagnoses(), report)


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_correct_twin_gets_no_diagnosis(planted: Planted) -> None:
    report = check_planted(planted, planted.correct, 0)
    assert report.passed, str(report)
    assert report.diagnoses() == [] and report.failure_text() == ""
    assert "Cause:" not in str(report)


def test_a_result_that_depends_on_the_batch_is_found_without_the_contract_path() -> None:
    from verijac import check_op

    planted = BY_NAME["batched_only"]
    report = check_op(
        planted.buggy,
        planted.case,
        seed=0,
        dtypes=["float64"],
        max_examples=1,
        batch_size=16,
        paths=["reverse.vjp_random", "higher.double_backward"],
    )
    assert all(r.evidence and r.evidence["fails_alone"] is False for r in report.failures)
    assert "which passes when checked alone" in report.failures[0].reason
    (d,) = report.diagnoses()
    # The batch of 16 reaches the path as 15 rows, then one row alone (`_evaluate.PIECES`).
    assert d.cause == "batch" and d.factor is not None and math.isclose(d.factor, 1 / 15)
    assert "= 1/15, one over the 15 points of the batch" in d.text()


# -- the report's text ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scaled() -> Report:
    planted = BY_NAME["scaled_backward"]
    return check_planted(planted, planted.buggy, 0)


def test_one_full_block_per_cause_and_every_failure_listed(scaled: Report) -> None:
    text = str(scaled)
    (d,) = scaled.diagnoses()
    # One full message, with its reproduce line, instead of one per failing record.
    assert text.count("MISMATCH: ") == 1 and text.count("reproduce: ") == 1
    assert f"{len(scaled.failures)} failing records:" in text
    for r in scaled.failures:
        assert r.path in text
    assert "Error shape: a constant factor 1.001 (actual/expected at all" in d.text()
    assert "Points: the whole sampled domain" in d.text()
    assert "reverse-mode" in d.summary and "forward-mode" in d.summary


def test_a_record_in_one_line(scaled: Report) -> None:
    line = scaled.failures[0].brief()
    assert "\n" not in line and line.startswith("MISMATCH: planted_scaled_backward / ")
    assert "expected " in line and "actual " in line


def test_the_run_file_carries_evidence_and_diagnoses(scaled: Report) -> None:
    data = json.loads(scaled.to_json())
    (written,) = data["diagnoses"]
    assert written["cause"] == "derivative" and written["text"].startswith("Cause: ")
    mismatches = [r for r in data["records"] if r["status"] == "mismatch"]
    assert all(r["evidence"]["shape"] == "factor" for r in mismatches)
    again = Report.from_json(scaled.to_json())
    assert again.diagnoses() == scaled.diagnoses()
    assert Diagnosis.from_dict(written) == scaled.diagnoses()[0]


def test_an_old_run_file_without_evidence_still_loads(scaled: Report) -> None:
    data = json.loads(scaled.to_json())
    del data["diagnoses"]
    for r in data["records"]:
        del r["evidence"]
    again = parse_run(json.dumps(data))
    assert all(r.evidence is None for r in again.records)
    # Without the shape evidence the cause is still found from which paths fail.
    (d,) = again.diagnoses()
    assert d.cause == "derivative" and d.shape == ""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.__setitem__("diagnoses", {}), "'diagnoses' must be list"),
        (lambda d: d["diagnoses"].append(3), "diagnosis #2: expected an object"),
        (lambda d: d["diagnoses"][0].pop("cause"), "cause must be a string"),
        (lambda d: d["records"][3].__setitem__("evidence", [1]), "evidence must be an object"),
        (lambda d: d["records"][3]["evidence"].pop("rows"), "evidence rows must be an integer"),
        (lambda d: d["records"][3]["evidence"].__setitem__("shape", "odd"), "evidence shape"),
    ],
)
def test_a_malformed_diagnosis_or_evidence_is_refused(
    scaled: Report, edit: Any, message: str
) -> None:
    data = json.loads(scaled.to_json())
    edit(data)
    with pytest.raises(RunFileError, match=message):
        parse_run(json.dumps(data))


# -- evidence on synthetic arrays -----------------------------------------------------------------
def _e(n: int = 16, m: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, m, generator=gen, dtype=torch.float64) + 0.5


def test_a_constant_factor() -> None:
    e = _e()
    ev = measure(1.25 * e, e, 1e-9, computes="vjp")
    assert ev["shape"] == "factor" and math.isclose(ev["factor"], 1.25)
    assert ev["fits_all"] and ev["failing"] == e.numel() and ev["spread"] < 1e-12


def test_a_sign_flip() -> None:
    e = _e()
    ev = measure(-e, e, 1e-9, computes="vjp")
    assert ev["shape"] == "sign" and ev["factor"] == -1.0


def test_a_factor_that_holds_only_where_it_fails_fits_not_all() -> None:
    e = _e()
    a = e.clone()
    a[:4] *= 2.0
    ev = measure(a, e, 1e-9, computes="vjp")
    assert ev["shape"] == "factor" and ev["factor"] == 2.0 and not ev["fits_all"]
    assert (ev["failing_rows"], ev["rows"]) == (4, 16)


def test_zero_where_nonzero_is_expected() -> None:
    e = _e()
    ev = measure(torch.zeros_like(e), e, 1e-9, computes="jacobian")
    assert ev["shape"] == "zero" and ev["fits_all"]


def test_nan_only() -> None:
    e = _e()
    a = e.clone()
    a[2, 1] = math.nan
    a[5, 0] = math.inf
    ev = measure(a, e, 1e-9, computes="vjp")
    assert ev["shape"] == "nonfinite" and ev["nonfinite"] == 2 and ev["failing"] == 2


def test_nan_at_some_failing_entries_and_numbers_at_others_is_no_shape() -> None:
    e = _e()
    a = e.clone()
    a[2, 1] = math.nan
    a[5, 0] *= 3
    assert measure(a, e, 1e-9, computes="vjp")["shape"] == ""


def test_swapped_partials() -> None:
    x = torch.linspace(-2, 2, 16, dtype=torch.float64)
    y = torch.linspace(-1, 1.5, 16, dtype=torch.float64)
    # f = x·e^y: J = [e^y, x·e^y]; the buggy one gives them in the other order.
    e = torch.stack([torch.exp(y), x * torch.exp(y)], dim=-1).unsqueeze(1)
    a = e.flip(-1)
    ev = measure(a, e, 1e-9, computes="jacobian", labels=["x", "y"])
    assert ev["shape"] == "swap" and ev["swap"] == [["x", "y"], ["y", "x"]]


def test_mixed_errors_claim_no_shape() -> None:
    e = _e()
    gen = torch.Generator().manual_seed(1)
    a = e * (1 + torch.rand(e.shape, generator=gen, dtype=torch.float64))
    ev = measure(a, e, 1e-9, computes="vjp", labels=["x", "y", "z"])
    assert ev["shape"] == "" and "factor" not in ev and "swap" not in ev
    lo, hi = ev["ratio"]
    assert 1 <= lo < hi <= 2


def test_region_ranges_of_failing_and_passing_points() -> None:
    x = torch.linspace(-3, 3, 25, dtype=torch.float64).reshape(-1, 1)
    e = torch.cos(x)
    a = torch.where(x < -1, 2 * e, e)
    ev = measure(a, e, 1e-9, computes="vjp", points=x, labels=["x"])
    ranges = ev["coordinates"]["x"]
    assert ranges["fail"] == [-3.0, -1.25] and ranges["pass"] == [-1.0, 3.0]


def test_coordinate_labels_name_array_elements() -> None:
    from verijac import Case, array, scalar

    a = scalar("a")
    case = Case("c", {"a": a, "A": array("A", (2, 2))}, a, {"a": (-1, 1), "A": (-1, 1)})
    assert coordinate_labels(case) == ["a", "A[0,0]", "A[0,1]", "A[1,0]", "A[1,1]"]


# -- grouping on synthetic records --------------------------------------------------------------
def _rec(
    path: str, status: str, *, dtype: str = "float64", device: str = "cpu", **kw: Any
) -> Record:
    from verijac.paths import get_path

    p = get_path(path)
    return Record(
        case="c",
        path=path,
        family=p.family,
        computes=p.computes,
        device=device,
        dtype=dtype,
        status=status,
        points=32,
        seed=0,
        **kw,
    )


def _ev(shape: str = "", failing_rows: int = 32, **kw: Any) -> dict[str, Any]:
    return {
        "rows": 32,
        "failing_rows": failing_rows,
        "entries": 32,
        "failing": 32,
        "shape": shape,
        **kw,
    }


def test_reverse_fails_forward_passes_is_the_backward_rule() -> None:
    (d,) = diagnose(
        [
            _rec(
                "reverse.vjp_random", "mismatch", evidence=_ev("factor", factor=2.0, fits_all=True)
            ),
            _rec("func.vjp", "mismatch", evidence=_ev("factor", factor=2.0, fits_all=True)),
            _rec("forward.dual", "pass"),
            _rec("func.jvp", "pass"),
        ]
    )
    assert d.cause == "backward" and d.shape == "factor" and d.factor == 2.0 and d.whole_domain
    assert "2 reverse-mode paths" in d.summary and "both forward-mode paths" in d.summary


def test_forward_fails_reverse_passes_is_the_jvp_rule() -> None:
    (d,) = diagnose([_rec("reverse.vjp_random", "pass"), _rec("forward.dual", "mismatch")])
    assert d.cause == "jvp" and "the reverse-mode path reverse.vjp_random passes" in d.summary


def test_only_second_order_failing_is_the_second_order_rule() -> None:
    (d,) = diagnose(
        [
            _rec("reverse.vjp_random", "pass"),
            _rec("higher.double_backward", "mismatch"),
            _rec("higher.jacfwd_jacfwd", "pass"),
        ]
    )
    assert d.cause == "second_order" and d.summary.startswith(
        "the second-order (double-backward) rule of c only"
    )
    assert "(higher.jacfwd_jacfwd) passes without double backward" in d.summary


def test_only_vmap_paths_failing_is_the_vmap_rule() -> None:
    (d,) = diagnose(
        [
            _rec("func.vmap_jacrev", "mismatch"),
            _rec("reverse.grad_batched", "mismatch"),
            _rec("reverse.vjp_random", "pass"),
        ]
    )
    assert d.cause == "vmap"


def test_vmap_paths_failing_without_a_passing_plain_path_of_their_mode_is_not_vmap() -> None:
    # The only path of the failing mode without vmap did not run: no contrast, no vmap claim.
    (d,) = diagnose([_rec("func.vmap_jacrev", "mismatch"), _rec("forward.dual", "pass")])
    assert d.cause == "backward"


def test_failures_in_one_dtype_with_the_same_paths_passing_in_another() -> None:
    (d,) = diagnose(
        [
            _rec("reverse.vjp_random", "pass"),
            _rec("reverse.vjp_random", "mismatch", dtype="float32"),
            _rec("forward.dual", "pass"),
            _rec("forward.dual", "pass", dtype="float32"),
        ]
    )
    assert d.dtypes == ("float32",) and d.devices == ()
    assert "in float32 only" in d.summary and "the same paths pass in float64" in d.summary


def test_failures_on_one_device() -> None:
    (d,) = diagnose(
        [
            _rec("reverse.vjp_random", "pass"),
            _rec("reverse.vjp_random", "mismatch", device="cuda:0"),
        ]
    )
    assert d.devices == ("cuda:0",) and "on cuda:0 only" in d.summary


def test_failures_in_one_dtype_whose_paths_did_not_pass_elsewhere_are_not_confined() -> None:
    (d,) = diagnose(
        [
            _rec("reverse.vjp_random", "unsupported"),
            _rec("reverse.vjp_random", "mismatch", dtype="float32"),
        ]
    )
    assert d.dtypes == ()


def test_results_with_different_shapes_claim_none() -> None:
    (d,) = diagnose(
        [
            _rec("reverse.vjp_random", "mismatch", evidence=_ev("factor", factor=2.0)),
            _rec("func.vjp", "mismatch", evidence=_ev("sign", factor=-1.0)),
        ]
    )
    assert d.shape == "" and d.factor is None
    assert "no single pattern fits every failing entry" in d.text()


def test_results_with_different_factors_claim_none() -> None:
    (d,) = diagnose(
        [
            _rec("reverse.vjp_random", "mismatch", evidence=_ev("factor", factor=2.0)),
            _rec("func.vjp", "mismatch", evidence=_ev("factor", factor=3.0)),
        ]
    )
    assert d.shape == "" and "not the same one: 2 to 3" in d.text()


def test_a_shape_most_results_show_is_stated_with_its_counts_but_not_claimed() -> None:
    swap = _ev("swap", swap=[["x", "y"], ["y", "x"]])
    (d,) = diagnose(
        [
            _rec("reverse.vjp_random", "mismatch", evidence=swap),
            _rec("func.vjp", "mismatch", evidence=swap),
            _rec("functional.vhp", "mismatch", evidence=_ev(ratio=[-2.0, 7.0])),
        ]
    )
    assert d.shape == "" and d.swap == ()
    assert "swapped partials: the result for x is the exact one for y" in d.text()
    assert "(2 of the 3 results)" in d.text()
    assert "no single pattern fits the other 1 (functional.vhp)" in d.text()


def _ranges(fail: list[float], passing: list[float]) -> dict[str, Any]:
    return {
        "x": {
            "fail": fail,
            "pass": passing,
            "fail_abs": [min(abs(v) for v in fail), max(abs(v) for v in fail)],
            "pass_abs": [0.0, max(abs(v) for v in passing)],
        }
    }


def test_a_region_pooled_over_records() -> None:
    (d,) = diagnose(
        [
            _rec(
                "reverse.vjp_random",
                "mismatch",
                evidence=_ev(failing_rows=5, coordinates=_ranges([-2.9, -1.1], [-0.9, 2.9])),
            ),
            _rec(
                "func.vjp",
                "mismatch",
                evidence=_ev(failing_rows=7, coordinates=_ranges([-3.0, -1.2], [-1.0, 3.0])),
            ),
        ]
    )
    assert d.region is not None and (d.region.side, d.region.magnitude) == ("below", False)
    assert d.region.failing == (-3.0, -1.1) and d.region.passing == (-1.0, 3.0)
    assert "the failures lie where x ≤ -1.1; every passing point has x ≥ -1" in d.text()


def test_overlapping_failing_and_passing_points_claim_no_region() -> None:
    (d,) = diagnose(
        [
            _rec(
                "reverse.vjp_random",
                "mismatch",
                evidence=_ev(failing_rows=5, coordinates=_ranges([-2.9, -1.1], [-0.9, 2.9])),
            ),
            _rec(
                "func.vjp",
                "mismatch",
                evidence=_ev(failing_rows=7, coordinates=_ranges([0.5, 1.0], [-3.0, 3.0])),
            ),
        ]
    )
    assert d.region is None and "no threshold on one input separates them" in d.text()


def test_same_exception_in_several_paths_is_one_diagnosis() -> None:
    why = "ValueError: bad shape (raised at op.py:3 in f)"
    (d,) = diagnose(
        [
            _rec("reverse.vjp_random", "error", reason=why),
            _rec("func.vjp", "error", reason=why + " (called with a batch of 1 points)"),
            _rec("forward.dual", "error", reason="TypeError: other"),
        ]
    )
    assert d.cause == "exception" and len(d.records) == 2 and "ValueError: bad shape" in d.summary


def test_a_missing_required_capability() -> None:
    why = "required capability forward_ad: You must implement the jvp function"
    (d,) = diagnose(
        [
            _rec("forward.dual", "mismatch", reason=why),
            _rec("func.jvp", "mismatch", reason=why),
            _rec("reverse.vjp_random", "pass"),
        ]
    )
    assert d.cause == "capability" and "forward_ad, declared required" in d.summary


def test_a_passing_report_has_no_diagnosis() -> None:
    assert diagnose([_rec("reverse.vjp_random", "pass"), _rec("forward.dual", "xfail")]) == []
