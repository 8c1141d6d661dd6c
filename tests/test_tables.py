"""Reference tables: exact values, correct rounding, formats, safe loading, and regression."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import pytest
import sympy
import torch
from verijac_cases.seeds import CASES as SEEDS
from verijac_cases.seeds import seed_tuple_io

import verijac
from verijac._errors import TableError, UnknownCaseError
from verijac._runfile import load_run
from verijac._table_format import render
from verijac._table_numbers import (
    FORMATS,
    bit_pattern,
    decimal_text,
    exact_text,
    round_binary,
)
from verijac._table_regress import regress
from verijac._tables import Table, build_table, read_table, write_table

ROOT = Path(__file__).resolve().parent.parent
F64, F32 = FORMATS["float64"], FORMATS["float32"]
SEEDS_SORTED = sorted(SEEDS, key=lambda c: c.name)

#: The published tables: file → the options of the command on docs/tables.md that makes it.
PUBLISHED = {"seeds.json": "json", "seeds.csv": "csv", "seeds.md": "md"}
PUBLISHED_OPTIONS: dict[str, Any] = {"points": 2, "rational": True, "seed": 0}


def _values(table: Table, case: str, point: str, quantity: str) -> list[str | None]:
    c = next(c for c in table.cases if c.name == case)
    k = next(i for i, p in enumerate(c.points) if p.id == point)
    return [e.exact for e in c.values[k][quantity]]


@pytest.fixture(scope="module")
def seed_table() -> Table:
    return build_table(SEEDS_SORTED, points=2, seed=0)


@pytest.fixture()
def table_file(seed_table: Table, tmp_path: Path) -> Path:
    path = tmp_path / "seeds.json"
    write_table(seed_table, path)
    return path


# -- numbers ------------------------------------------------------------------------------------


def _f32_neighbours(x: float) -> list[float]:
    bits = struct.unpack(">I", struct.pack(">f", x))[0]
    out = []
    for b in (bits - 1, bits + 1):
        if 0 <= b < 0x7F800000 or 0x80000000 <= b < 0xFF800000:
            out.append(struct.unpack(">f", struct.pack(">I", b))[0])
    return out


def test_float32_and_float64_are_correctly_rounded_from_exact_values() -> None:
    import random

    rng = random.Random(1)
    for _ in range(2000):
        value = Fraction(rng.randint(-(10**25), 10**25), rng.randint(1, 10 ** rng.randint(1, 30)))
        assert round_binary(value, F64) == value.numerator / value.denominator
        got = round_binary(value, F32)
        assert struct.unpack(">f", struct.pack(">f", got))[0] == got
        for other in _f32_neighbours(got):
            assert abs(Fraction(got) - value) <= abs(Fraction(other) - value)


def test_float32_is_rounded_once_not_through_float64() -> None:
    # Just above the midpoint between float32's 1 and 1 + 2**-23: float64 rounds it onto the
    # midpoint, and float64 → float32 then rounds to even (1); the correct answer is above.
    value = 1 + Fraction(1, 2**24) + Fraction(1, 2**60)
    assert struct.unpack("f", struct.pack("f", float(value)))[0] == 1.0  # the double rounding
    assert round_binary(value, F32) == 1 + 2**-23


def test_subnormals_overflow_and_bit_patterns() -> None:
    assert round_binary(Fraction(1, 2**149), F32) == 2.0**-149
    assert round_binary(Fraction(1, 2**150), F32) == 0.0  # a tie: to even, zero
    assert round_binary(Fraction(10**39), F32) == float("inf")
    assert bit_pattern(1.0, F64) == "0x3ff0000000000000"
    assert bit_pattern(-2.0, F64) == "0xc000000000000000"
    assert bit_pattern(1.0, F32) == "0x3f800000"
    assert bit_pattern(float("inf"), F32) == "0x7f800000"


def test_decimals_keep_their_digits_and_round_half_even() -> None:
    assert decimal_text(Fraction(48), 30) == "48.0000000000000000000000000000"
    assert decimal_text(Fraction(-7, 3), 5) == "-2.3333"
    assert decimal_text(Fraction(125, 1000), 2) == "0.12"  # a tie, to even
    assert decimal_text(Fraction(1, 8 * 10**6), 5) == "1.2500e-7"
    assert decimal_text(Fraction(99999), 3) == "1.00e+5"
    assert exact_text(Fraction(-7, 3)) == "-7/3" and exact_text(Fraction(48)) == "48"


# -- building tables ------------------------------------------------------------------------------


def test_seed_tables_hold_the_documents_exact_values(seed_table: Table) -> None:
    assert _values(seed_table, "seed_tuple_io", "known-0", "J") == [
        *("1", "1", "0"),
        *("5", "0", "3"),
        *("0", "48", "0"),
    ]
    assert _values(seed_table, "seed_tuple_io", "known-0", "f") == ["7", "15", "64"]
    for k in range(1, 10):
        point = f"known-{k - 1}"
        assert _values(seed_table, "seed_batched_gradient", point, "J") == [
            str(2 * k),
            *("3", "4", "5", "6"),
        ]
    hessian = _values(seed_table, "seed_batched_gradient", "known-0", "H")
    assert hessian[0] == "2" and hessian[6] == "6" and hessian[24] == "30"


def test_every_column_derives_from_the_exact_value(seed_table: Table) -> None:
    for case in seed_table.cases:
        for values in case.values:
            for entries in values.values():
                for entry in entries:
                    if entry.exact is None:
                        continue
                    exact = Fraction(entry.exact)
                    assert entry.float64 == round_binary(exact, F64)
                    assert entry.float32 == round_binary(exact, F32)
                    assert entry.decimal == decimal_text(exact, 30)


def test_generated_points_are_reproducible_float32_numbers_inside_the_domain() -> None:
    first = build_table([seed_tuple_io], points=4, seed=7, known=False)
    again = build_table([seed_tuple_io], points=4, seed=7, known=False)
    other = build_table([seed_tuple_io], points=4, seed=8, known=False)
    assert first.to_json() == again.to_json() != other.to_json()
    for point in first.cases[0].points:
        for c in point.flat():
            assert -10 <= c <= 10
            assert round_binary(c, F32) == c  # the same point in float32 and float64
    # Rational functions at those (binary) points are exact.
    assert all(e.exact is not None for e in first.cases[0].values[0]["J"])


def test_rational_points_lie_on_the_grid_and_give_short_exact_values() -> None:
    table = build_table([seed_tuple_io], points=3, seed=0, rational=True, known=False)
    for point, values in zip(table.cases[0].points, table.cases[0].values, strict=True):
        assert point.source == "rational"
        assert all(16 % c.denominator == 0 for c in point.flat())
        assert all(e.exact is not None and len(e.exact) < 20 for e in values["J"])


def _mp_value(expr: sympy.Expr, at: dict[Any, Any], dps: int) -> Fraction:
    with mpmath.workdps(dps):
        args = [mpmath.mpf(v.numerator) / v.denominator for v in at.values()]
        value = sympy.lambdify(list(at), expr, "mpmath")(*args)
        sign, man, exp, _ = value._mpf_
        q = Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)
        return -q if sign else q


def test_inexact_entries_agree_with_mpmath_at_far_higher_precision() -> None:
    x, y = verijac.scalar("x"), verijac.scalar("y")
    case = verijac.Case(
        "table_sin_exp",
        inputs={"x": x, "y": y},
        outputs=sympy.sin(x) * sympy.exp(y) + sympy.atan2(y, x),
        domain={"x": (0.5, 2), "y": (-1, 1)},
    )
    table = build_table([case], points=3, seed=0, digits=25, known=False)
    grad = [sympy.diff(case.out_exprs[0], s) for s in (x, y)]
    for point, values in zip(table.cases[0].points, table.cases[0].values, strict=True):
        at = {x: point.coords["x"][0], y: point.coords["y"][0]}
        for entry, expr in zip(values["J"], grad, strict=True):
            truth = _mp_value(expr, at, 80)
            assert entry.exact is None
            assert entry.decimal == decimal_text(truth, 25)
            assert entry.float64 == round_binary(truth, F64)
            assert entry.float32 == round_binary(truth, F32)


def test_exact_values_through_non_rational_functions_at_known_points() -> None:
    x = verijac.scalar("x")
    case = verijac.Case(
        "table_sqrt_cos",
        inputs={"x": x},
        outputs=(sympy.sqrt(x), sympy.cos(x - sympy.Rational(9, 16))),
        domain={"x": (0.25, 2)},
        known=[verijac.KnownPoint(at={"x": "9/16"}, value=(sympy.Rational(3, 4), 1))],
    )
    table = build_table([case], known=True)
    assert table.cases[0].points[0].flat() == [Fraction(9, 16)]
    assert _values(table, "table_sqrt_cos", "known-0", "f") == ["3/4", "1"]
    assert _values(table, "table_sqrt_cos", "known-0", "J") == ["2/3", "0"]


def test_piecewise_rational_functions_are_exact_and_others_fall_back() -> None:
    x, y = verijac.scalar("x"), verijac.scalar("y")
    case = verijac.Case(
        "table_abs_piecewise",
        inputs={"x": x, "y": y},
        outputs=(
            sympy.Abs(x) * sympy.Max(x, y) / 3,
            sympy.Piecewise((sympy.exp(y), y > 0), (y**2, True)),
        ),
        domain={"x": (0.5, 2), "y": (-1, 1)},
        exclude=[y],
    )
    table = build_table([case], points=4, rational=True, known=False)
    signs = set()
    for point, values in zip(table.cases[0].points, table.cases[0].values, strict=True):
        px, py = point.flat()
        signs.add(py > 0)
        assert values["f"][0].exact == exact_text(abs(px) * max(px, py) / 3)
        second = values["f"][1]
        if py > 0:  # exp of a rational: not exact, settled by mpmath
            assert second.exact is None
            truth = _mp_value(sympy.exp(y), {y: py}, 80)
            assert second.float64 == round_binary(truth, F64)
        else:
            assert second.exact == exact_text(py**2)
    assert signs == {True, False}  # both branches were drawn


def test_the_same_table_twice_gives_the_same_bytes_in_every_format(
    seed_table: Table, tmp_path: Path
) -> None:
    again = build_table(SEEDS_SORTED, points=2, seed=0)
    for fmt in ("json", "csv", "md", "latex"):
        a, b = tmp_path / f"a.{fmt}", tmp_path / f"b.{fmt}"
        write_table(seed_table, a, fmt)
        write_table(again, b, fmt)
        assert a.read_bytes() == b.read_bytes()


def test_formats_show_the_values(seed_table: Table) -> None:
    md = render(seed_table, "md")
    assert (
        "| known-0 | x1 = 3, x2 = 4, x3 = 5 | (7, 15, 64) | ((1, 1, 0), (5, 0, 3), (0, 48, 0)) |"
        in md
    )
    assert "| (4, 3, 4, 5, 6) |" in md  # seed_batched_gradient at x0 = 2
    rows = render(seed_table, "csv").splitlines()
    assert rows[0] == (
        "case,point,quantity,index,exact,decimal,float64,float64_hex,float32,float32_hex"
    )
    assert (
        'seed_tuple_io,known-0,J,"2,1",48,48.0000000000000000000000000000,48.0,'
        "0x4048000000000000,48.0,0x42400000"
    ) in rows
    latex = render(seed_table, "latex")
    assert "\\subsection*{seed\\_tuple\\_io}" in latex
    assert "\\begin{pmatrix} 1 & 1 & 0 \\\\ 5 & 0 & 3 \\\\ 0 & 48 & 0 \\end{pmatrix}" in latex


def test_written_table_reads_back(table_file: Path, seed_table: Table) -> None:
    loaded = read_table(table_file)
    assert [c.name for c in loaded.cases] == [c.name for c in seed_table.cases]
    assert loaded.metadata["digits"] == 30 and loaded.metadata["sympy"] == sympy.__version__
    io = next(c for c in loaded.cases if c.name == "seed_tuple_io")
    entry = io.values[0]["J"][7]
    assert entry.exact == 48 and entry.float64 == 48.0 and entry.float32 == 48.0
    assert io.points[0].flat() == [3, 4, 5]


# -- corrupt tables --------------------------------------------------------------------------------


def _edit(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _case(data: dict[str, Any], name: str = "seed_tuple_io") -> dict[str, Any]:
    return next(c for c in data["cases"] if c["name"] == name)


def _set_entry(data: dict[str, Any], field: str, value: Any) -> None:
    _case(data)["points"][0]["J"][7][field] = value


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (
        lambda p: p.write_text(p.read_text()[: len(p.read_text()) // 2]),
        r"not valid JSON at line \d+, column \d+: .*; the file ends early: truncated\?",
    ),
    "expression edited": (
        lambda p: _edit(
            p, lambda d: _case(d)["definition"]["outputs"][2].__setitem__("exprs", ["x2**4"])
        ),
        r"case 'seed_tuple_io': its definition .* no longer matches its hash",
    ),
    "value not a number": (
        lambda p: _edit(p, lambda d: _set_entry(d, "float64", "forty-eight")),
        r"case 'seed_tuple_io': point 'known-0': J\[2,1\]: 'float64' is 'forty-eight', not a number",
    ),
    "wrong shape": (
        lambda p: _edit(p, lambda d: _case(d)["points"][0]["J"].pop()),
        r"point 'known-0': quantity J has 8 entries, expected 9 \(shape \[3, 3\]\)",
    ),
    "missing field": (
        lambda p: _edit(p, lambda d: _case(d)["points"][0]["J"][7].pop("decimal")),
        r"point 'known-0': J\[2,1\]: missing field 'decimal'",
    ),
    "unknown schema version": (
        lambda p: _edit(p, lambda d: d.__setitem__("schema_version", 0)),
        r"unknown schema version 0",
    ),
    "newer schema": (
        lambda p: _edit(p, lambda d: d.__setitem__("schema_version", 99)),
        r"schema version 99 is newer .* upgrade verijac",
    ),
    "newer verijac": (
        lambda p: _edit(p, lambda d: d["metadata"].__setitem__("verijac", "99.0")),
        r"metadata: the table was written by verijac 99.0, newer than this verijac",
    ),
    "plausible value edited": (
        lambda p: _edit(p, lambda d: _set_entry(d, "decimal", "49.0")),
        r"point 'known-0': its coordinates or values no longer match its checksum",
    ),
    "hex disagrees": (
        lambda p: _edit(p, lambda d: _set_entry(d, "float32_hex", "0x42440000")),
        r"J\[2,1\]: 'float32_hex' is '0x42440000' but 'float32' '48.0' has the bit pattern "
        r"0x42400000",
    ),
    "exact disagrees": (
        lambda p: _edit(p, lambda d: _set_entry(d, "exact", "47")),
        r"J\[2,1\]: 'float64' '48.0' is not the exact value 47 rounded",
    ),
    "nan literal": (
        lambda p: p.write_text(p.read_text().replace('"digits": 30', '"digits": NaN')),
        r"NaN is not a number a table may hold",
    ),
    "not a table": (
        lambda p: p.write_text('{"records": []}'),
        r"not a verijac reference table",
    ),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_table_is_refused_with_its_location(table_file: Path, kind: str) -> None:
    corrupt, message = CORRUPTIONS[kind]
    corrupt(table_file)
    with pytest.raises(TableError) as info:
        read_table(table_file)
    text = str(info.value)
    assert text.startswith(str(table_file) + ": ")
    assert "\n" not in text
    assert re.search(message, text), text


# -- regress ------------------------------------------------------------------------------------------


PATHS = ["reverse.grad_loop", "func.jacrev", "functional.jvp", "func.jacrev_jacrev", "func.grad"]


def test_regress_passes_on_cpu_and_writes_a_run_file(table_file: Path, tmp_path: Path) -> None:
    table = read_table(table_file)
    report = regress(
        table,
        paths=PATHS,
        devices=["cpu", "cuda"],
        dtypes=["float64", "float32", "float16"],
        cases={c.name: c for c in SEEDS},  # the seed cases, without loading the registry
    )
    assert report.passed, str(report)
    by_status: dict[str, int] = {}
    for r in report.records:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    assert by_status.get("pass", 0) > 0
    if not torch.cuda.is_available():
        assert all(r.status == "skipped" for r in report.records if r.device == "cuda")
    jac = next(
        r
        for r in report.records
        if r.path == "func.jacrev" and r.case == "seed_tuple_io" and r.dtype == "float32"
    )
    assert jac.status == "pass" and jac.points == 3 and jac.max_ulp is not None
    assert jac.index is not None and jac.expected is not None and "worst entry J[" in jac.reason
    hessian = next(
        r for r in report.records if r.path == "func.jacrev_jacrev" and r.case == "seed_tuple_io"
    )
    assert hessian.status == "unsupported" and "--hessian" in hessian.reason
    run = tmp_path / "run.json"
    report.write_json(run)
    back = load_run(run)  # the run file `verijac diff` reads
    assert back.settings["command"] == "regress"
    assert set(back.cases) == {c.name for c in SEEDS}
    assert back.settings["table_hash"] == table.file_hash
    assert table.file_hash.startswith("sha256:")
    assert back.settings["table"] == str(table_file)
    assert len(back.records) == len(report.records)


class _WrongSquare(torch.autograd.Function):
    """x² with the backward of x³: 3x² instead of 2x."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


def test_regress_finds_a_wrong_backward_without_sympy_in_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unregistered(name: str) -> verijac.Case:
        raise UnknownCaseError(name)

    # A case nobody registered (and no loading of the whole shipped library to find out).
    monkeypatch.setattr("verijac._registry.get_case", unregistered)
    x = verijac.scalar("x")
    kwargs: dict[str, Any] = {"inputs": {"x": x}, "outputs": x**2, "domain": {"x": (0.5, 2)}}
    truth = verijac.Case("table_square", **kwargs)
    path = tmp_path / "square.json"
    write_table(build_table([truth], points=3, rational=True), path)
    table = read_table(path)
    op = verijac.Case("table_square", torch_impl=_WrongSquare.apply, **kwargs)
    report = regress(
        table,
        paths=["reverse.grad_loop"],
        devices=["cpu"],
        dtypes=["float64"],
        cases={"table_square": op},
    )
    (record,) = report.records
    assert record.status == "mismatch" and record.max_ulp is not None and record.max_ulp > 1e6
    assert record.reproduce.startswith("verijac regress ")
    # Without the op the function is rebuilt from the table's expressions, and passes.
    rebuilt = regress(table, paths=["reverse.grad_loop"], devices=["cpu"], dtypes=["float64"])
    assert rebuilt.passed and "rebuilt" in rebuilt.settings["functions"]["table_square"]
    other = verijac.Case("table_square", inputs={"x": x}, outputs=x**3, domain={"x": (0.5, 2)})
    with pytest.raises(TableError, match="differ from the table's"):
        regress(table, paths=["reverse.grad_loop"], cases={"table_square": other})


# -- published tables, docs and the command ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_seed_tables_regenerate_byte_for_byte(name: str) -> None:
    """Byte for byte, except the versions of verijac, SymPy and mpmath the table states:
    CI installs whatever versions pip resolves, and the values must not depend on them."""
    table = build_table(SEEDS_SORTED, **PUBLISHED_OPTIONS)
    published = ROOT / "docs" / "tables" / name
    assert _versionless(published.read_text()) == _versionless(
        write_table(table, None, PUBLISHED[name])
    ), f"docs/tables/{name} is stale; regenerate it with the commands on docs/tables.md"


def _versionless(text: str) -> str:
    text = re.sub(r'"(verijac|sympy|mpmath)": "[^"]*"', r'"\1": "*"', text)
    return re.sub(r"(verijac|SymPy|mpmath) [0-9][^ ,;)]*", r"\1 *", text)


def test_docs_example_is_part_of_the_published_table() -> None:
    page = (ROOT / "docs" / "tables.md").read_text()
    published = (ROOT / "docs" / "tables" / "seeds.json").read_text()
    example = page.split("```json\n", 1)[1].split("```", 1)[0]
    for line in example.splitlines():
        if line.strip() and line.strip() != "…":
            assert line.strip() in published, line


def test_table_command_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, verijac._table_cli; "
        "print([m for m in ('torch', 'sympy', 'mpmath') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_table_then_regress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from verijac._cli import main

    out = tmp_path / "t.json"
    assert main(["table", "--case", "seed_tuple_io", "--points", "1", "--output", str(out)]) == 0
    assert main(["table", "--case", "seed_tuple_io", "--points", "1", "--format", "md"]) == 0
    assert "((1, 1, 0), (5, 0, 3), (0, 48, 0))" in capsys.readouterr().out
    run = tmp_path / "run.json"
    argv = ["regress", str(out), "--path", "func.jacrev", "--device", "cpu", "--json", str(run)]
    assert main(argv) == 0
    assert "verijac regress: PASSED" in capsys.readouterr().out
    assert json.loads(run.read_text())["settings"]["command"] == "regress"
    out.write_text(out.read_text()[:100])
    assert main(["regress", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"verijac: error: {out}: not valid JSON at line ") and "\n" not in err
