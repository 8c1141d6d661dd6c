"""The table of result kinds: every view of it agrees with it, and each record is honest."""

from __future__ import annotations

import pytest
import torch

from verijac._evidence import INPUT_AXES
from verijac._kinds import KINDS, Kind
from verijac._records import entry_label
from verijac._tolerances import COMPUTES_ORDER
from verijac.paths import COMPUTES

COMPARED = [k for k in KINDS if k.exact is not None]


def test_every_view_of_the_kinds_is_derived_from_the_table() -> None:
    assert tuple(k.name for k in KINDS) == COMPUTES
    assert {k.name: k.order for k in KINDS} == COMPUTES_ORDER
    assert {k.name: k.input_axes for k in KINDS if k.input_axes} == INPUT_AXES
    assert [k.name for k in KINDS if k.exact is None] == ["behaviour"]


@pytest.mark.parametrize("kind", COMPARED, ids=lambda k: k.name)
def test_tangent_and_cotangent_flags_match_what_the_exact_value_uses(kind: Kind) -> None:
    """A report shows the tangent (cotangent) of a kind exactly when its value depends on it."""
    assert kind.exact is not None
    gen = torch.Generator().manual_seed(0)
    n_points, m, n = 3, 1, 4  # one output: the scalar-output kinds apply too
    jac = torch.randn(n_points, m, n, generator=gen, dtype=torch.float64)
    hess = torch.randn(n_points, m, n, n, generator=gen, dtype=torch.float64)
    t = torch.randn(n_points, n, generator=gen, dtype=torch.float64)
    c = torch.randn(n_points, m, generator=gen, dtype=torch.float64)
    base = kind.exact(jac, hess if kind.second_order else None, t, c)
    h = hess if kind.second_order else None
    assert (not torch.equal(kind.exact(jac, h, 2 * t + 1, c), base)) == kind.tangent
    assert (not torch.equal(kind.exact(jac, h, t, 2 * c + 1), base)) == kind.cotangent
    assert (kind.weight is None) == kind.plain


def test_entry_labels_come_from_the_kinds() -> None:
    from verijac_cases.seeds import seed_tuple_io

    for kind in COMPARED:
        index = [0] * (kind.shape.count(",") + 1)  # the point, then the result axes
        assert entry_label(seed_tuple_io, kind.name, index), kind.name
    assert entry_label(seed_tuple_io, "behaviour", [0]) == ""
