"""Run files, `verijac diff`, baselines, shards and `verijac merge`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import sympy
import torch

import verijac
from verijac._cli import main
from verijac._diff import diff_runs
from verijac._report import Record, Report
from verijac._runfile import (
    SCHEMA_VERSION,
    RunFileError,
    load_run,
    merge_runs,
    parse_run,
    parse_shard,
)

CASES = ["seed_tuple_io", "elementwise_sin", "binary_mul", "reduction_sum"]
SMALL: dict[str, Any] = {"max_examples": 1, "batch_size": 8, "dtypes": "float64"}


def _record(**kw: Any) -> Record:
    base: dict[str, Any] = {
        "case": "c",
        "path": "func.jacrev",
        "family": "func",
        "computes": "jacobian",
        "device": "cpu",
        "dtype": "float64",
        "status": "pass",
        "points": 8,
        "seed": 1,
        "max_ulp": 1.0,
    }
    base.update(kw)
    return Record(**base)


def _report(*records: Record, torch_version: str = "2.14.1", seed: int = 1, **cases: str) -> Report:
    return Report(
        records=list(records),
        seed=seed,
        settings={"profile": "ci"},
        environment={"torch": torch_version},
        cases=cases or {"c": "h1"},
    )


# -- run files -------------------------------------------------------------------------------


def test_a_run_file_carries_schema_environment_settings_and_case_hashes(tmp_path: Path) -> None:
    report = verijac.check(CASES[:2], seed=5, paths=["func.jacrev", "reverse.grad_loop"], **SMALL)
    file = tmp_path / "run.json"
    report.write_json(file)
    data = json.loads(file.read_text())
    assert data["schema"] == "verijac-run" and data["schema_version"] == SCHEMA_VERSION
    env = data["environment"]
    assert env["torch"] == torch.__version__
    for key in ("torch_git", "cuda", "cudnn", "devices", "python", "sympy", "verijac"):
        assert key in env
    assert env["devices"]["cpu"]
    settings = data["settings"]
    for key in ("profile", "tf32", "tolerances", "paths", "max_examples", "batch_size"):
        assert key in settings
    assert set(data["cases"]) == set(CASES[:2])
    back = load_run(file)
    assert [r.key for r in back.records] == [r.key for r in report.records]
    assert back.cases == report.cases and back.seed == 5


def test_the_case_hash_changes_with_the_expressions_and_the_domain() -> None:
    from verijac._runfile import case_hash

    x = verijac.scalar("x")
    a = verijac.Case("h", {"x": x}, sympy.sin(x), {"x": (-1, 1)})
    b = verijac.Case("h", {"x": x}, sympy.sin(x), {"x": (-1, 2)})
    c = verijac.Case("h", {"x": x}, sympy.cos(x), {"x": (-1, 1)})
    again = verijac.Case("h", {"x": x}, sympy.sin(x), {"x": (-1, 1)})
    assert case_hash(a) == case_hash(again)
    assert len({case_hash(a), case_hash(b), case_hash(c)}) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ('{"schema": "verijac-run", "schema_ver', "truncated"),
        ("not json at all", "not valid JSON"),
        ('{"records": []}', "not a verijac run file"),
        ("[1, 2]", "not a verijac run file"),
        ('{"schema": "verijac-run", "schema_version": 99}', "newer than this verijac"),
        ('{"schema": "verijac-run", "schema_version": "1"}', "must be an integer"),
        (
            '{"schema": "verijac-run", "schema_version": 1, "seed": 1}',
            "missing field 'environment'",
        ),
    ],
)
def test_a_bad_run_file_gets_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(RunFileError) as info:
        parse_run(text, source="r.json")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_bad_record_is_named(tmp_path: Path) -> None:
    data = json.loads(_report(_record()).to_json())
    data["records"][0]["status"] = "great"
    with pytest.raises(RunFileError, match=r"record #1: unknown status 'great'"):
        parse_run(json.dumps(data), source="r.json")
    del data["records"][0]["path"]
    with pytest.raises(RunFileError, match=r"record #1: missing fields \['path'\]"):
        parse_run(json.dumps(data), source="r.json")


@pytest.mark.parametrize("content", ["", "{", '{"a": 1}', "\x00\x01binary"])
def test_the_diff_command_refuses_a_bad_file_with_exit_2(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.json"
    _report(_record()).write_json(good)
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["diff", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("verijac: error: ") and err.count("\n") == 1
    assert main(["diff", str(good), str(tmp_path / "missing.json")]) == 2


# -- diff ------------------------------------------------------------------------------------


def test_diff_classifies_and_sorts_by_severity() -> None:
    a = _report(
        _record(path="p.regress"),
        _record(path="p.fixed", status="mismatch", max_ulp=1e6),
        _record(path="p.grew", max_ulp=1.0),
        _record(path="p.shrank", max_ulp=500.0),
        _record(path="p.removed"),
        _record(path="p.same", max_ulp=3.0),
        _record(path="p.lost", status="pass"),
    )
    b = _report(
        _record(path="p.new"),
        _record(path="p.same", max_ulp=4.0),
        _record(path="p.shrank", max_ulp=2.0),
        _record(path="p.grew", max_ulp=100.0),
        _record(path="p.fixed", status="pass"),
        _record(path="p.regress", status="mismatch", max_ulp=1e9),
        _record(path="p.lost", status="unsupported", reason="no jvp"),
        torch_version="2.15.0",
    )
    d = diff_runs(a, b)
    kinds = [(c.kind, c.path) for c in d.changes]
    assert kinds == [
        ("regressed", "p.lost"),
        ("regressed", "p.regress"),
        ("error grew", "p.grew"),
        ("new", "p.new"),
        ("removed", "p.removed"),
        ("fixed", "p.fixed"),
        ("error shrank", "p.shrank"),
    ]
    assert d.unchanged == 1
    assert d.changes[1].cause == "torch 2.14.1→2.15.0"
    table = d.table()
    assert "regressed" in table and "p.regress" in table and "7 changed" in table
    md = d.table(markdown=True)
    assert md.splitlines()[3].startswith("| CHANGE |")


def test_diff_names_a_known_torch_defect_and_a_changed_case() -> None:
    a = _report(_record(case="c"), _record(case="d"), c="h1", d="h2")
    b = _report(
        _record(case="c", status="xfail", known="torch defect det-second-derivative"),
        _record(case="d", status="mismatch"),
        c="h1",
        d="CHANGED",
    )
    d = diff_runs(a, b)
    by_case = {c.case: c for c in d.changes}
    assert by_case["c"].kind == "regressed"
    assert by_case["c"].cause == "known torch defect det-second-derivative"
    assert by_case["d"].kind == "case changed"


def test_diff_pairs_across_devices_and_says_when_points_differ() -> None:
    a = _report(_record(device="cpu"), seed=1)
    b = _report(_record(device="cuda:0", status="mismatch"), seed=2)
    d = diff_runs(a, b)
    (change,) = d.changes
    assert change.device == "cpu→cuda:0" and change.kind == "regressed"
    assert "device cpu→cuda:0" in change.cause
    assert any("different seeds" in line for line in d.context)
    assert any("different devices" in line for line in d.context)


def test_diff_factor_is_validated() -> None:
    with pytest.raises(verijac.UsageError, match="factor must be a number > 1"):
        diff_runs(_report(), _report(), factor=1)


def test_the_diff_command_exit_status_and_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _report(_record(max_ulp=1.0)).write_json(a)
    _report(_record(max_ulp=50.0)).write_json(b)
    assert main(["diff", str(a), str(b)]) == 0  # grew 25x: reported, not a regression
    assert "error grew" in capsys.readouterr().out
    assert main(["diff", str(a), str(b), "--factor", "100"]) == 0
    assert "0 changed" in capsys.readouterr().out
    _report(_record(status="error", reason="RuntimeError: boom")).write_json(b)
    out = tmp_path / "d.json"
    assert main(["diff", str(a), str(b), "--json", str(out)]) == 1
    data = json.loads(out.read_text())
    assert data["counts"]["regressed"] == 1
    assert main(["diff", str(a), str(b), "--markdown"]) == 1
    assert "| regressed |" in capsys.readouterr().out
    assert main(["diff", str(a), str(b), "--factor", "0.5"]) == 2


# -- a planted regression of a custom op, found by baseline and diff --------------------------


def _sin_op(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x)


class _WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.sin(x)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * torch.cos(x) * 1.001  # the planted regression: 0.1 % off


def test_baseline_then_a_planted_regression_is_exactly_what_diff_reports(tmp_path: Path) -> None:
    x = verijac.scalar("x")
    case = verijac.Case("runs_sin", {"x": x}, sympy.sin(x), {"x": (-3, 3)})
    paths = ["reverse.grad_loop", "reverse.vjp_random", "functional.jacobian", "forward.dual"]
    options: dict[str, Any] = {"seed": 4, "paths": paths, **SMALL}
    before = verijac.check_op(_sin_op, case, **options)
    assert before.passed
    base = tmp_path / "base.json"
    before.write_json(base)
    after = verijac.check_op(_WrongBackward.apply, case, **options)
    diff = diff_runs(before, after)
    regressed = {(c.path, c.after) for c in diff.regressed}
    # The backward rule is wrong: the reverse-mode paths regress; forward mode becomes
    # unsupported (a Function without jvp): a lost capability, reported as such.
    assert regressed == {
        ("reverse.grad_loop", "mismatch"),
        ("reverse.vjp_random", "mismatch"),
        ("functional.jacobian", "mismatch"),
        ("forward.dual", "unsupported"),
    }
    assert [c.kind for c in diff.changes] == ["regressed"] * 4
    # With the baseline, the same failures the baseline had are known, new ones fail.
    again = verijac.check_op(_WrongBackward.apply, case, baseline=after, **options)
    assert again.passed
    assert {r.status for r in again.records if r.path.startswith(("reverse", "functional"))} == {
        "known"
    }
    fresh = verijac.check_op(_WrongBackward.apply, case, baseline=base, **options)
    assert not fresh.passed


def test_the_cli_baseline_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "base.json"
    args = ["check", "--case", "elementwise_sin", "--path", "func.jacrev", "--dtype", "float64"]
    args += ["--seed", "2", "--max-examples", "1", "--batch-size", "4", "-q", "--no-progress"]
    assert main([*args, "--baseline", str(base), "--update-baseline"]) == 0
    assert load_run(base).records[0].status == "pass"
    assert main([*args, "--baseline", str(base)]) == 0
    assert main([*args, "--update-baseline"]) == 2
    assert "--update-baseline needs --baseline" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{")
    assert main([*args, "--baseline", str(tmp_path / "junk.json")]) == 2


def test_as_baseline_keeps_the_failures_a_known_record_stands_for() -> None:
    from verijac._records import against_baseline, as_baseline

    failing = _record(status="mismatch")
    known = against_baseline(_record(status="error"), {failing.key: failing})
    assert known.status == "known" and known.known == "baseline:error"
    written = as_baseline(_report(known))
    assert written.records[0].status == "error" and written.records[0].known == ""
    assert against_baseline(_record(), {failing.key: failing}).status == "pass"


# -- shards and merge ------------------------------------------------------------------------


def _essence(report: Report) -> dict[tuple[str, str, str, str], tuple[Any, ...]]:
    return {
        r.key: (r.status, r.points, r.max_abs, r.max_rel, r.max_ulp, r.reason)
        for r in report.records
    }


def test_shards_merged_equal_the_unsharded_run(tmp_path: Path) -> None:
    options: dict[str, Any] = {
        "seed": 9,
        "paths": ["func.jacrev", "reverse.vjp_random", "func.jvp"],
        "max_examples": 1,
        "batch_size": 8,
    }
    whole = verijac.check(CASES, **options)
    files = []
    for k in (1, 2, 3):
        shard = verijac.check(CASES, shard=f"{k}/3", **options)
        assert shard.settings["shard"] == f"{k}/3"
        f = tmp_path / f"s{k}.json"
        shard.write_json(f)
        files.append(str(f))
    merged = merge_runs([load_run(f) for f in files], sources=files)
    assert _essence(merged) == _essence(whole)
    out = tmp_path / "merged.json"
    assert main(["merge", *files, "--json", str(out)]) == 0
    assert _essence(load_run(out)) == _essence(whole)
    # Overlap and mismatched settings are refused.
    assert main(["merge", files[0], files[0], "--json", str(out)]) == 2
    other = verijac.check(CASES[:1], shard="1/3", **{**options, "seed": 10})
    other.write_json(tmp_path / "o.json")
    with pytest.raises(verijac.UsageError, match="seed 10 differs"):
        merge_runs([load_run(files[0]), load_run(tmp_path / "o.json")])


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0", ""])
def test_a_bad_shard_is_a_usage_error(text: str) -> None:
    with pytest.raises(verijac.UsageError, match="shard"):
        parse_shard(text)


def test_the_cli_refuses_a_bad_shard(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--case", "elementwise_sin", "--shard", "5/2"]) == 2
    assert "1 <= K <= N" in capsys.readouterr().err


# -- output files are checked before the run ---------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--json", ""], "--json needs a file name"),
        (["--json", "SAME", "--junit", "SAME"], "name the same file"),
        (["--json", "DIR"], "is a directory"),
        (["--json", "MISSING/x.json"], "does not exist"),
    ],
)
def test_unwritable_outputs_are_refused_before_the_run(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = [
        e.replace("SAME", str(tmp_path / "same.out"))
        .replace("DIR", str(tmp_path))
        .replace("MISSING", str(tmp_path / "no" / "such"))
        for e in extra
    ]
    code = main(["check", "--case", "elementwise_sin", "--no-progress", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "same.out").exists()
    assert os.listdir(tmp_path) == [] or all(not f.endswith(".tmp") for f in os.listdir(tmp_path))
