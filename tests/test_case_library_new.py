"""The grown case library: its size, its families, the conventions of the newer modules, and
the torch defects they document (``verijac/torch_defects/library.toml``)."""

from __future__ import annotations

import fnmatch
import importlib
import tomllib
from importlib import resources

import pytest

import verijac
from verijac import Case
from verijac._defects import list_defects

#: module → the family tag (and name prefix) of its cases, and how many it must at least hold.
MODULES = {
    "network": ("network", 15),
    "losses": ("loss", 15),
    "linalg_decompositions": ("linalg", 20),
    "geometry": ("geometry", 12),
    "physics": ("physics", 10),
    "distributions": ("distribution", 8),
    "special_more": ("special", 20),
}
NEW = [
    (module, case)
    for module in MODULES
    for case in importlib.import_module(f"verijac_cases.{module}").CASES
]
#: Family tags. ("piecewise" is also a family of the older library, but on a case of another
#: family it is the property "not smooth", as ``smooth`` is the opposite one.)
ALL_FAMILIES = {"elementwise", "binary", "reduction"} | {fam for fam, _ in MODULES.values()}


def test_the_library_holds_at_least_160_cases() -> None:
    cases = [c for c in verijac.list_cases() if "seed" not in c.tags]
    assert len(cases) >= 160, len(cases)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_new_module_is_registered_with_its_cases(module: str) -> None:
    _, minimum = MODULES[module]
    cases = importlib.import_module(f"verijac_cases.{module}").CASES
    assert len(cases) >= minimum, (module, len(cases))
    for case in cases:
        assert verijac.get_case(case.name) is case


@pytest.mark.parametrize(("module", "case"), NEW, ids=[c.name for _, c in NEW])
def test_new_cases_follow_the_library_conventions(module: str, case: Case) -> None:
    family, _ = MODULES[module]
    assert case.name.startswith(family + "_")
    assert case.tags & ALL_FAMILIES == {family}
    assert ("smooth" in case.tags) != ("piecewise" in case.tags)
    assert ("scalar-output" in case.tags) == case.scalar_output
    assert case.torch_impl is not None, "the torch op a user calls is the point of the case"
    assert case.known, "every case has a known point with exact values"
    assert case.description


def _covering(case: str, version: str) -> list[str]:
    return [
        d.id
        for d in list_defects()
        if any(fnmatch.fnmatchcase(case, g) for g in d.cases) and d.applies_to_version(version)
    ]


NO_GRAD = [c for _, c in NEW if "torch-no-grad" in c.tags]


@pytest.mark.parametrize("case", NO_GRAD, ids=[c.name for c in NO_GRAD])
def test_functions_without_a_torch_derivative_say_so_and_are_known_defects(case: Case) -> None:
    assert "no derivative" in case.description
    for version in ("2.13.0", "2.14.1"):
        ids = _covering(case.name, version)
        assert ids, (case.name, version)
        for d in list_defects():
            if d.id in ids:
                assert {"mismatch", "error"} <= set(d.shows)


def _library_entries() -> list[dict[str, object]]:
    path = resources.files("verijac") / "torch_defects" / "library.toml"
    entries: list[dict[str, object]] = tomllib.loads(path.read_text(encoding="utf-8"))["defect"]
    return entries


ENTRIES = _library_entries()


@pytest.mark.parametrize("entry", ENTRIES, ids=[str(e["id"]) for e in ENTRIES])
def test_library_defects_name_existing_cases_and_ship_a_runnable_reproduction(
    entry: dict[str, object],
) -> None:
    names = [c.name for c in verijac.list_cases()]
    globs = entry["cases"]
    assert isinstance(globs, list)
    for glob in globs:
        assert fnmatch.filter(names, glob), (entry["id"], glob)
    script = entry["reproduce"]
    assert isinstance(script, str)
    compile(script, f"<reproduce {entry['id']}>", "exec")
    assert "import torch" in script and "verijac" not in script
    assert "assert" not in script, "the script must run cleanly where the defect is fixed"
    measured = entry["measured"]
    assert isinstance(measured, list) and measured
    defect = next(d for d in list_defects() if d.id == entry["id"])
    assert all(defect.applies_to_version(v) for v in measured)
