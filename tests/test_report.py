"""Records and reports: messages, summary, JSON round trip, JUnit XML."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from verijac import UsageError
from verijac._report import Record, Report


def _records() -> list[Record]:
    common = {
        "case": "seed_grad_loop",
        "family": "reverse",
        "computes": "vjp",
        "device": "cpu",
        "seed": 42,
    }
    return [
        Record(
            path="reverse.grad",
            dtype="float64",
            status="pass",
            points=64,
            max_abs=1e-16,
            max_rel=2e-16,
            max_ulp=1.0,
            rtol=2e-7,
            atol=2e-7,
            **common,
        ),
        Record(
            path="reverse.backward",
            dtype="float32",
            status="mismatch",
            points=64,
            max_abs=0.0123,
            max_rel=1e-3,
            max_ulp=math.inf,
            rtol=2.6e-6,
            atol=2e-5,
            allowed=4e-5,
            reason="3 of 64 points in batch 1 show errors beyond the tolerance",
            point={"x": [2.5, -1.0]},
            index=[0, 1],
            expected=12.3,
            actual=math.nan,
            tangent=None,
            cotangent=[1.0, 0.5],
            reproduce="verijac check --case seed_grad_loop --path reverse.backward --device cpu --dtype float32 --seed 42",
            **common,
        ),
        Record(
            path="func.jvp",
            dtype="float32",
            status="unsupported",
            points=0,
            reason="no forward-mode rule",
            **common,
        ),
        Record(
            path="func.vmap",
            dtype="float32",
            status="error",
            points=0,
            reason="RuntimeError: boom",
            **common,
        ),
        Record(
            path="compiled.x",
            dtype="float32",
            status="skipped",
            points=0,
            reason="CUDA is not available",
            **common,
        ),
    ]


def _report() -> Report:
    return Report(
        records=_records(), seed=42, settings={"torch": "2.x", "tf32": False, "profile": "ci"}
    )


def test_counts_passed_and_failures() -> None:
    report = _report()
    assert report.counts() == {
        "pass": 1, "mismatch": 1, "unsupported": 1, "error": 1, "skipped": 1, "xfail": 0, "xpass": 0,
            "known": 0,
    }  # fmt: skip
    assert not report.passed
    assert [r.status for r in report.failures] == ["mismatch", "error"]
    assert Report(records=_records()[:1] + _records()[2:3]).passed
    summary = report.summary()
    assert "FAILED" in summary and "1 mismatch" in summary and "seed 42" in summary
    assert "reverse.backward" in summary and "0.0123" in summary


def test_failure_message_has_every_piece() -> None:
    msg = _records()[1].message()
    for piece in (
        "seed_grad_loop", "reverse.backward", "cpu", "float32", "seed 42", "x=[2.5, -1.0]",
        "expected 12.3", "actual nan", "index [0, 1]", "abs error 0.0123", "rel error 0.001",
        "inf ULP", "rtol=2.6e-06", "atol=2e-05", "reproduce: verijac check --case seed_grad_loop",
    ):  # fmt: skip
        assert piece in msg, piece
    text = str(_report())
    assert msg in text and "RuntimeError: boom" in text


def test_json_round_trip_is_strict_json(tmp_path: Path) -> None:
    report = _report()
    text = report.to_json()

    def reject(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    data = json.loads(text, parse_constant=reject)
    assert data["seed"] == 42 and data["counts"]["error"] == 1
    back = Report.from_json(text)
    assert back.seed == 42 and back.settings == report.settings
    assert len(back.records) == 5
    mism = back.records[1]
    assert math.isnan(mism.actual or 0.0) and mism.max_ulp == math.inf
    assert mism.point == {"x": [2.5, -1.0]} and mism.cotangent == [1.0, 0.5]
    assert back.records[0] == report.records[0]
    out = tmp_path / "r.json"
    report.write_json(out)
    assert Report.from_json(out.read_text()).counts() == report.counts()
    with pytest.raises(UsageError, match="not a verijac run file"):
        Report.from_json("{}")


def test_junit_parses(tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    _report().write_junit(out)
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == ("5", "1", "1", "2")
    cases = suite.findall("testcase")
    assert len(cases) == 5
    assert cases[1].get("name") == "reverse.backward[cpu-float32]"
    failure = cases[1].find("failure")
    assert failure is not None and "reproduce:" in (failure.text or "")
    assert cases[3].find("error") is not None
    assert cases[2].find("skipped") is not None and cases[4].find("skipped") is not None
    assert cases[0].find("failure") is None


def _known(status: str) -> Record:
    rec = _records()[1] if status == "xfail" else _records()[0]
    reason = (
        "expected failure (case 'c', known_failures['reverse.*']): torch does X. Observed: …"
        if status == "xfail"
        else "known failure did not show on 64 points (case 'c', known_failures['reverse.*'])"
    )
    return Record(**{**rec.__dict__, "status": status, "reason": reason})


def test_xfail_and_xpass_do_not_fail_and_are_reported(tmp_path: Path) -> None:
    report = Report(records=[_records()[0], _known("xfail"), _known("xpass")], seed=7)
    assert report.passed and not report.failures
    assert report.counts()["xfail"] == 1 and report.counts()["xpass"] == 1
    summary = report.summary()
    assert "PASSED" in summary and "1 xfail" in summary and "1 xpass" in summary
    assert "0.0123" not in summary  # an xfail's numbers stay in its record, not the path table
    text = str(report)
    assert "did not show (xpass)" in text and "reverse.grad [cpu, float64]" in text
    again = Report.from_json(report.to_json())
    assert [r.status for r in again.records] == ["pass", "xfail", "xpass"]
    report.write_junit(tmp_path / "r.xml")
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and suite.get("skipped") == "1"
    cases = suite.findall("testcase")
    skipped = cases[1].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("xfail: expected failure")
    assert cases[2].find("skipped") is None and cases[2].find("failure") is None
    out = cases[2].find("system-out")
    assert out is not None and (out.text or "").startswith("xpass: known failure did not show")


def test_an_error_record_does_not_present_the_passing_points_figures_as_its_error() -> None:
    """A case defect found in the second chunk leaves the first chunk's errors on the record;
    they were printed as if they were the error ('abs error 8.9e-16 … 926885 ULP')."""
    base = {"case": "c", "path": "p", "family": "reverse", "computes": "jacobian"}
    base |= {"device": "cpu", "dtype": "float64", "points": 1024, "seed": 1}
    err = Record(status="error", reason="case defect: reference is NaN", max_abs=8.9e-16, **base)
    assert "before it: abs error" in err.message()
    bad = Record(status="mismatch", expected=1.0, actual=2.0, max_abs=1.0, **base)
    assert "before it" not in bad.message() and "  abs error 1" in bad.message()
