"""The torch-defects registry: data, version scoping, op kinds, and what records it explains."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

import verijac
from verijac._defects import (
    DefectError,
    TorchDefect,
    find_defect,
    list_defects,
    markdown,
    op_kinds,
    parse_defects,
)
from verijac.paths import get_path

ROOT = Path(__file__).resolve().parents[1]


class Sin(torch.autograd.Function):
    """A correct op with backward, jvp and a generated vmap rule."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    @staticmethod
    def setup_context(ctx: object, inputs: tuple[torch.Tensor, ...], output: object) -> None:
        ctx.save_for_backward(inputs[0])  # type: ignore[attr-defined]
        ctx.save_for_forward(inputs[0])  # type: ignore[attr-defined]

    @staticmethod
    def backward(ctx: object, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return g * torch.cos(x)

    @staticmethod
    def jvp(ctx: object, t: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return t * torch.cos(x)

    generate_vmap_rule = True


class NoJvp(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)  # type: ignore[attr-defined]
        return torch.sin(x)

    @staticmethod
    def backward(ctx: object, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return g * torch.cos(x)


def test_the_shipped_registry_loads_with_unique_valid_entries() -> None:
    defects = list_defects()
    ids = [d.id for d in defects]
    assert len(ids) == len(set(ids))
    assert {"bessel-j-no-grad", "autograd-function-jvp-forward-over-forward"} <= set(ids)
    for d in defects:
        assert d.measured and d.reproduce.strip() and d.summary


def test_the_docs_page_is_generated_from_the_registry() -> None:
    page = (ROOT / "docs" / "torch-defects.md").read_text(encoding="utf-8")
    assert page == markdown(list_defects()), (
        "docs/torch-defects.md is stale: run `verijac defects --markdown > docs/torch-defects.md`"
    )


def test_every_reproduction_script_runs_with_torch_alone() -> None:
    """Each script must run cleanly whether or not the installed torch shows the defect."""
    scripts = {d.id: d.reproduce for d in list_defects()}
    driver = textwrap.dedent(
        """
        import json, sys, io, contextlib, warnings
        warnings.simplefilter("ignore")
        scripts = json.loads(sys.stdin.read())
        for name, code in scripts.items():
            assert "verijac" not in code, name
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, name, "exec"), {"__name__": "__main__"})
            assert out.getvalue().strip(), name + " printed nothing"
        print("ok", len(scripts))
        """
    )
    import json

    done = subprocess.run(
        [sys.executable, "-c", driver],
        input=json.dumps(scripts),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"ok {len(scripts)}"


def _entry(**kw: object) -> str:
    base = {
        "id": "x-defect",
        "summary": "s",
        "torch": ">=2.0",
        "measured": ["2.0.0"],
        "cases": ["c_*"],
        "paths": ["func.jacrev"],
        "point": "p",
        "exact": "e",
        "torch_value": "t",
        "reproduce": "print(1)",
    }
    base.update(kw)

    def val(v: object) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(f'"{x}"' for x in v) + "]"
        return f'"{v}"' if isinstance(v, str) else str(v)

    return "[[defect]]\n" + "\n".join(f"{k} = {val(v)}" for k, v in base.items()) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[defect]\n", "not valid TOML"),
        (_entry(colour="red"), "unknown fields ['colour']"),
        (_entry(torch="2.14 or so"), "version specifier"),
        (_entry(paths=["func.jacrevv"]), "matches no path"),
        (_entry(measured=["two"]), "non-version"),
        (_entry(cases=[], op_kinds=[]), "give cases"),
        (_entry(op_kinds=["magic"]), "unknown op_kinds"),
        (_entry(shows=["pass"]), "shows must list"),
        (_entry(id="Bad Id"), "kebab-case"),
        (_entry().replace('reproduce = "print(1)"\n', ""), "missing fields ['reproduce']"),
        ("defect = 3\n", "array of tables"),
    ],
)
def test_a_malformed_entry_is_refused_with_its_location(text: str, message: str) -> None:
    with pytest.raises(DefectError) as info:
        parse_defects(text, source="mine.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("mine.toml")


def test_an_entry_applies_only_to_its_torch_versions() -> None:
    path = get_path("func.jacrev")
    hit = {"case": "special_bessel_j0", "path": path, "device": "cpu", "dtype": "float64"}
    found = find_defect(**hit, torch_version="2.14.1")
    assert found is not None and found.id == "bessel-j-no-grad"
    assert find_defect(**hit, torch_version="2.14.1+cpu") is not None  # local versions
    assert find_defect(**hit, torch_version="2.15.0") is None
    assert find_defect(**hit, torch_version="2.12.1") is None
    assert find_defect(**{**hit, "case": "special_bessel_i0"}, torch_version="2.14.1") is None


def test_device_and_dtype_scopes() -> None:
    (d,) = parse_defects(_entry(devices=["cuda"], dtypes=["float32"]), source="mine.toml")
    path = get_path("func.jacrev")
    covers = lambda device, dtype: d.covers(  # noqa: E731
        case="c_1", op_kinds=(), path=path, device=device, dtype=dtype
    )
    assert covers("cuda:1", "float32")
    assert not covers("cpu", "float32")
    assert not covers("cuda:0", "float64")


def test_op_kinds_are_read_from_the_autograd_graph() -> None:
    x = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    assert op_kinds(Sin.apply(x)) == {
        "autograd_function",
        "autograd_function_jvp",
        "autograd_function_vmap",
    }
    assert op_kinds(NoJvp.apply(x)) == {"autograd_function", "autograd_function_without_jvp"}
    # Through a wrapper and after other ops too.
    assert "autograd_function_jvp" in op_kinds((2 * Sin.apply(x * 3)).exp())
    assert op_kinds(torch.sin(x)) == frozenset()


def _op_case() -> verijac.Case:
    import sympy

    x = verijac.scalar("x")
    return verijac.Case("defects_sin", {"x": x}, sympy.sin(x), {"x": (-3, 3)})


def test_a_correct_op_with_a_jvp_passes_check_op_with_the_torch_defect_shown() -> None:
    report = verijac.check_op(
        Sin.apply, _op_case(), seed=1, max_examples=2, batch_size=16, dtypes="float64"
    )
    assert report.passed, str(report)
    record = next(r for r in report.records if r.path == "higher.jacfwd_jacfwd")
    # xfail where the defect shows (2.13.0, 2.14.1, measured); xpass on a torch that fixed it.
    assert record.status in ("xfail", "xpass"), record.reason
    assert record.known == "torch defect autograd-function-jvp-forward-over-forward"
    if record.status == "xfail":
        assert "known torch defect autograd-function-jvp-forward-over-forward" in record.reason
    # The paths that do work through the Function are checked and pass.
    passed = {r.path for r in report.records if r.status == "pass"}
    assert {"higher.jacrev_jacfwd", "func.jacfwd", "func.jvp", "reverse.grad_loop"} <= passed


class SquareNoJvp(torch.autograd.Function):
    """Vmap support, a backward, no jvp: forward mode must say the jvp is missing."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        return x * x

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return 2 * x * g


def test_a_function_without_a_jvp_is_unsupported_in_forward_mode_and_torchs_crash_known() -> None:
    """Every forward-mode path gets torch's "implement the jvp" and is unsupported; forward
    over forward crashes inside torch 2.13-2.14 (an AssertionError), which the registry
    knows (never an unexplained error, whatever the torch version); the reverse-mode paths
    are checked and pass."""
    x = verijac.scalar("x")
    case = verijac.Case("defects_square", {"x": x}, x**2, {"x": (-2, 2)})
    report = verijac.check_op(
        SquareNoJvp.apply, case, seed=1, max_examples=2, batch_size=8, dtypes="float64"
    )
    assert report.passed, str(report)
    by_path = {r.path: r for r in report.records}
    nested = by_path["higher.jacfwd_jacfwd"]
    if nested.status == "xfail":  # torch 2.13-2.14 (measured): the crash, known
        assert nested.known == "torch defect autograd-function-without-jvp-forward-over-forward"
        assert "flat_bdims" in nested.reason
    else:  # a torch that fixed it asks for the jvp like every other forward-mode path
        assert nested.status == "unsupported", nested.reason
        assert "implement the jvp" in nested.reason
    for name in ("forward.dual", "func.jacfwd", "func.jacfwd_jacrev", "func.hessian"):
        assert by_path[name].status == "unsupported", by_path[name].reason
        assert "implement the jvp" in by_path[name].reason
    assert {"reverse.grad_loop", "func.jacrev", "func.jacrev_jacrev"} <= {
        r.path for r in report.records if r.status == "pass"
    }
    # The entry is scoped to Functions without a jvp: Sin (with one) is not covered by it.
    assert not any(
        r.known.endswith("without-jvp-forward-over-forward")
        for r in verijac.check_op(
            Sin.apply, _op_case(), seed=1, max_examples=1, batch_size=8, dtypes="float64"
        ).records
        if r.known
    )


def test_require_still_demands_what_the_known_defect_breaks() -> None:
    report = verijac.check_op(
        Sin.apply,
        _op_case(),
        seed=1,
        max_examples=1,
        batch_size=8,
        dtypes="float64",
        paths=["higher.jacfwd_jacfwd", "func.jacfwd"],
        require="forward_ad",
    )
    by_path = {r.path: r for r in report.records}
    assert by_path["higher.jacfwd_jacfwd"].status == "mismatch"
    assert "autograd-function-jvp-forward-over-forward" in by_path["higher.jacfwd_jacfwd"].reason
    assert by_path["func.jacfwd"].status == "pass"


def test_outside_its_versions_the_defect_is_a_plain_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch, "__version__", "2.12.0")
    report = verijac.check_op(
        Sin.apply,
        _op_case(),
        seed=1,
        max_examples=1,
        batch_size=8,
        dtypes="float64",
        paths=["higher.jacfwd_jacfwd"],
    )
    (record,) = report.records
    assert record.status == "mismatch"
    assert record.known == ""


def test_a_registered_user_entry_explains_a_failure_and_is_listed() -> None:
    import sympy

    from verijac._defects import _DEFECTS, register_defect

    x = verijac.scalar("x")
    # The op computes sin; the case says 1.001·sin: func.jacrev fails by 0.1 %.
    case = verijac.Case("defects_scaled", {"x": x}, sympy.sin(x) * 1.001, {"x": (-3, 3)})
    planted = TorchDefect(
        id="user-scaled-sin",
        summary="my planted entry",
        torch=">=1.0",
        measured=("2.14.1",),
        paths=("func.jacrev",),
        cases=("defects_scaled",),
        point="x = 1",
        exact="1.001 cos(1)",
        torch_value="cos(1)",
        reproduce="print(0)",
    )
    options = {"seed": 1, "max_examples": 1, "batch_size": 8, "dtypes": "float64"}
    before = verijac.check_op(torch.sin, case, paths=["func.jacrev"], **options)
    assert before.records[0].status == "mismatch"
    register_defect(planted)
    try:
        assert planted in list_defects()
        with pytest.raises(DefectError, match="duplicate torch defect id"):
            register_defect(TorchDefect(**{**vars(planted), "summary": "other"}))
        report = verijac.check_op(torch.sin, case, paths=["func.jacrev"], **options)
        (record,) = report.records
        assert record.status == "xfail"
        assert record.known == "torch defect user-scaled-sin"
    finally:
        _DEFECTS.pop("user-scaled-sin", None)
    # The answers `find_defect` remembers are those of the registry's entries at the time:
    # without the entry, the same failure is a mismatch again.
    after = verijac.check_op(torch.sin, case, paths=["func.jacrev"], **options)
    assert after.records[0].status == "mismatch"
    assert after.records[0].known == ""


def test_shipped_cases_with_known_defects_fail_nothing_on_this_torch() -> None:
    report = verijac.check(
        ["special_bessel_j0"], seed=3, max_examples=1, batch_size=16, dtypes="float64"
    )
    assert report.passed, str(report)
    bessel = find_defect(
        case="special_bessel_j0", path=get_path("func.jacrev"), device="cpu", dtype="float64"
    )
    if bessel is not None:  # this torch has no Bessel derivative: the defect explains it
        explained = [r for r in report.records if r.status in ("xfail", "xpass")]
        assert explained
        assert all(r.known == "torch defect bessel-j-no-grad" for r in explained)
        assert not [r for r in report.records if r.status == "pass" and r.family != "contract"]
    else:
        assert not [r for r in report.records if r.status == "xfail"]


def test_the_defects_command_lists_and_prints_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    from verijac._cli import main

    assert main(["defects"]) == 0
    out = capsys.readouterr().out
    assert "bessel-j-no-grad" in out and "APPLIES NOW" in out
    assert main(["defects", "--markdown"]) == 0
    assert capsys.readouterr().out == markdown(list_defects())
    assert main(["defects", "--file", "/nonexistent.toml"]) == 2
    assert "cannot read torch-defects file" in capsys.readouterr().err


def test_the_audit_names_the_parts_of_an_entry_where_the_defect_never_showed(
    tmp_path: Path,
) -> None:
    """An entry wider than its defect would take a new defect for the known one: the audit
    lists the paths and cases it covered where every record was xpass, across runs."""
    from verijac import Record, Report
    from verijac._cli import main
    from verijac._defect_audit import audit

    def rec(path: str, case: str, status: str, known: str = "torch defect det-x") -> Record:
        return Record(
            case=case, path=path, family="func", computes="jacobian", device="cpu",
            dtype="float64", status=status, points=8, seed=1, known=known,
        )  # fmt: skip

    one = Report([rec("func.vmap_jacfwd", "det_2", "xfail"), rec("func.jvp", "det_2", "xpass")])
    two = Report(
        [
            rec("func.vmap_jacfwd", "solve_tri", "xpass"),
            rec("func.jvp", "det_3", "xpass"),
            rec("func.vmap_jacfwd", "det_3", "xfail"),
            rec("func.jvp", "det_3", "pass", known=""),
        ]
    )
    found = {(u.entry, u.axis): u for u in audit([one, two])}
    assert found["det-x", "path"].names == ("func.jvp",)
    assert found["det-x", "path"].records == 2 and found["det-x", "path"].shown == 2
    assert found["det-x", "case"].names == ("solve_tri",)
    assert audit([one]) and not [u for u in audit([one]) if u.axis == "case"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    one.write_json(str(a))
    two.write_json(str(b))
    assert main(["defects", "--audit", str(a), str(b)]) == 0
