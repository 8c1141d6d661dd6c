"""Options shared by the CLI and the pytest plugin, and the cost of importing verijac."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

import verijac
from verijac._options import PROFILE_NAMES, positive_int, seconds, seed, select_cases


def test_profile_names_match_the_strategies() -> None:
    from verijac.strategies import PROFILES

    assert set(PROFILE_NAMES) == set(PROFILES)


@pytest.mark.parametrize(
    ("parse", "text", "value"),
    [(positive_int, "3", 3), (seed, "0", 0), (seconds, "2.5", 2.5)],
)
def test_option_types_accept_valid_values(parse: object, text: str, value: float) -> None:
    assert parse(text) == value  # type: ignore[operator]


@pytest.mark.parametrize(
    ("parse", "text"),
    [(positive_int, "0"), (positive_int, "x"), (seed, "-1"), (seconds, "0"), (seconds, "inf")],
)
def test_option_types_refuse_invalid_values(parse: object, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        parse(text)  # type: ignore[operator]


def test_select_cases_by_glob_and_tag() -> None:
    names = [c.name for c in select_cases(["seed_*"], ["matrix"])]
    assert names == ["seed_matrix_square"]
    assert len(select_cases([], [])) == len(verijac.list_cases())
    with pytest.raises(verijac.UsageError, match="no selected case has the tag"):
        select_cases(["seed_*"], ["no-such-tag"])
    with pytest.raises(verijac.UnknownCaseError):
        select_cases(["no_such_case"], [])


def test_importing_verijac_is_cheap() -> None:
    code = (
        "import sys, verijac, verijac._options, verijac.pytest_plugin\n"
        "print(sorted(m for m in ('torch', 'sympy', 'hypothesis', 'symengine') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
