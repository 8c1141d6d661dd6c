"""The conformance table: aggregation per case × path family × device × dtype, a column per
run, links to known torch defects, and the ``verijac conformance`` command."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from verijac._conformance import Cell, build_table
from verijac._conformance_cli import add_commands
from verijac._errors import UsageError
from verijac._report import Record, Report


def _rec(case: str, path: str, family: str, status: str, *, dtype: str = "float64",
         device: str = "cpu", ulp: float | None = 1.0, known: str = "") -> Record:  # fmt: skip
    return Record(
        case=case,
        path=path,
        family=family,
        computes="jacobian",
        device=device,
        dtype=dtype,
        status=status,
        points=8,
        seed=1,
        max_ulp=ulp,
        known=known,
    )


def _report(torch_version: str, records: list[Record]) -> Report:
    return Report(
        records=records,
        seed=1,
        settings={"profile": "ci", "command": "verijac check --profile ci --seed 1"},
        environment={"torch": torch_version},
    )


def _two_runs() -> tuple[Report, Report]:
    new = _report(
        "2.14.1",
        [
            _rec("case_a", "reverse.grad_loop", "reverse", "pass", ulp=2.0),
            _rec("case_a", "reverse.vjp_random", "reverse", "pass", ulp=7.0),
            _rec("case_a", "func.hessian", "func", "unsupported", ulp=None),
            _rec("case_a", "func.jacrev", "func", "pass", ulp=1.0),
            _rec(
                "case_b",
                "func.jacrev",
                "func",
                "xfail",
                ulp=1e9,
                known="torch defect cdist-vmap-backward",
            ),
            _rec("case_b", "func.jacrev", "func", "mismatch", dtype="float32", ulp=50.0),
        ],
    )
    old = _report(
        "2.13.0",
        [
            _rec("case_a", "reverse.grad_loop", "reverse", "pass", ulp=3.0),
            _rec("case_b", "func.jacrev", "func", "error", ulp=None),
        ],
    )
    return new, old


def test_cells_aggregate_a_family_into_its_worst_status_and_ulp() -> None:
    new, old = _two_runs()
    table = build_table([new, old], sources=["new.json", "old.json"])
    cell = table.rows[("case_a", "reverse", "cpu", "float64")][0]
    assert cell is not None
    assert cell.status == "pass" and cell.counts == {"pass": 2} and cell.worst_ulp == 7.0
    mixed = table.rows[("case_a", "func", "cpu", "float64")][0]
    assert mixed is not None and mixed.status == "pass" and mixed.counts["unsupported"] == 1


def test_one_column_per_run_labelled_by_torch_version_and_missing_cells_shown() -> None:
    new, old = _two_runs()
    table = build_table([new, old], sources=["new.json", "old.json"])
    assert [r.label for r in table.runs] == ["torch 2.14.1", "torch 2.13.0"]
    # case_a's func family was only measured on 2.14.1
    assert table.rows[("case_a", "func", "cpu", "float64")][1] is None
    page = table.markdown()
    assert "| op (case) | path family | dtype | torch 2.14.1 | torch 2.13.0 |" in page
    assert "| `case_a` | func | float64 | pass (pass 1, unsupported 1) · 1 ULP | — |" in page


def test_known_torch_defects_link_to_the_defects_page() -> None:
    new, old = _two_runs()
    page = build_table([new, old]).markdown(defects_page="torch-defects.md")
    assert "[cdist-vmap-backward](torch-defects.md#cdist-vmap-backward)" in page


def test_unexplained_failures_are_bold_and_listed_first() -> None:
    new, old = _two_runs()
    table = build_table([new, old], sources=["new.json", "old.json"])
    bad = table.unexplained()
    assert (("case_b", "func", "cpu", "float32"), "torch 2.14.1") in bad
    assert (("case_b", "func", "cpu", "float64"), "torch 2.13.0") in bad
    # the xfail explained by a registered defect is not unexplained
    assert (("case_b", "func", "cpu", "float64"), "torch 2.14.1") not in bad
    page = table.markdown()
    assert "**mismatch**" in page and "**error**" in page
    assert page.index("## Unexplained failures") < page.index("## Table")
    assert "- torch 2.14.1: `case_b` / func [cpu, float32]" in page


def test_a_clean_run_says_nothing_is_unexplained() -> None:
    clean = _report("2.14.1", [_rec("case_a", "reverse.grad_loop", "reverse", "pass")])
    assert (
        "None: every mismatch and error is a known torch defect." in build_table([clean]).markdown()
    )


def test_devices_get_a_column_only_when_several_were_measured() -> None:
    one = _report("2.14.1", [_rec("c", "func.jacrev", "func", "pass")])
    assert "| device |" not in build_table([one]).markdown()
    two = _report(
        "2.14.1",
        [
            _rec("c", "func.jacrev", "func", "pass"),
            _rec("c", "func.jacrev", "func", "pass", device="cuda:0"),
        ],
    )
    page = build_table([two]).markdown()
    assert "| op (case) | path family | device | dtype |" in page


def test_nan_ulp_is_the_worst_and_stays() -> None:
    cell = Cell()
    cell.add(_rec("c", "p", "f", "mismatch", ulp=math.nan))
    cell.add(_rec("c", "p", "f", "pass", ulp=3.0))
    assert cell.worst_ulp is not None and math.isnan(cell.worst_ulp)
    assert "nan ULP" in cell.markdown()


def test_family_filter_and_json_form() -> None:
    new, old = _two_runs()
    table = build_table([new, old], families=["reverse"])
    assert {k[1] for k in table.rows} == {"reverse"}
    data = json.loads(table.to_json())
    assert data["runs"][0]["torch"] == "2.14.1"
    row = data["rows"][0]
    assert row["case"] == "case_a" and row["cells"][0]["worst_ulp"] == 7.0


def test_no_reports_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="at least one run file"):
        build_table([])


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="verijac")
    add_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_command_writes_the_page_and_json_from_run_files(tmp_path: Path) -> None:
    new, old = _two_runs()
    a, b = tmp_path / "torch-2.14.1.json", tmp_path / "torch-2.13.0.json"
    new.write_json(a)
    old.write_json(b)
    out, js = tmp_path / "conformance.md", tmp_path / "conformance.json"
    args = _parse(
        [
            "conformance",
            str(a),
            str(b),
            "--output",
            str(out),
            "--json",
            str(js),
            "--note",
            "Runs: X.",
        ]
    )
    assert args.func(args) == 0
    page = out.read_text(encoding="utf-8")
    assert "Runs: X." in page
    assert "torch 2.14.1" in page and "torch 2.13.0" in page
    assert f"verijac conformance {a} {b} --output {out}" in page
    assert json.loads(js.read_text(encoding="utf-8"))["runs"][1]["torch"] == "2.13.0"


def test_command_refuses_a_file_that_is_not_a_run_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    args = _parse(["conformance", str(bad)])
    assert args.func(args) == 2
    assert "not a verijac run file" in capsys.readouterr().err
