"""Every planted bug is caught on every seed; every correct twin passes on every seed.

The paths are the cheap set that covers every kind of planted bug (random-cotangent VJP,
accumulation, forward mode, double backward, the contract family), so that 12 bugs × 2 twins ×
10 seeds run in about 80 s on two cores.
"""

from __future__ import annotations

import pytest
from planted_ops import BY_NAME, PATHS, PLANTED, SEEDS, Planted, check_planted

from verijac import check_op


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_bug_is_caught_on_every_seed(planted: Planted) -> None:
    missed, crashed = [], []
    for seed in SEEDS:
        report = check_planted(planted, planted.buggy, seed)
        mismatches = [r for r in report.records if r.status == "mismatch"]
        if not mismatches:
            missed.append(seed)
        crashed += [
            f"seed {seed}: {r.label}: {r.reason}" for r in report.records if r.status == "error"
        ]
        # The bug shows only in the dtypes it lives in.
        assert {r.dtype for r in mismatches} <= set(planted.wrong_dtypes), report
    assert not missed, f"{planted.name}: not caught on seeds {missed}"
    assert not crashed, "a planted bug must be a mismatch, not an error:\n" + "\n".join(crashed)


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: p.name)
def test_correct_twin_passes_on_every_seed(planted: Planted) -> None:
    for seed in SEEDS:
        report = check_planted(planted, planted.correct, seed)
        assert report.passed, f"seed {seed}:\n{report}"


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("ignores_scale", "contract.cotangent_scaling"),
        ("inplace_cache", "contract.repeat_backward"),
        ("batched_only", "contract.batch_consistency"),
        ("wrong_vmap_rule", "contract.vmap_consistency"),
        ("wrong_jvp", "forward.dual"),
        ("detached_backward", "higher.double_backward"),
    ],
)
def test_the_path_meant_for_a_bug_catches_it(name: str, path: str) -> None:
    planted = BY_NAME[name]
    report = check_planted(planted, planted.buggy, 0)
    status = {r.path: r.status for r in report.records if r.dtype == "float64"}
    assert status[path] == "mismatch", report


def test_forward_mode_bug_leaves_reverse_mode_passing() -> None:
    planted = BY_NAME["wrong_jvp"]
    report = check_planted(planted, planted.buggy, 0)
    for r in report.records:
        assert (r.status == "mismatch") == (r.path == "forward.dual"), r.message()


def test_detached_backward_without_require_is_still_not_a_pass() -> None:
    # torch differentiates through the detached backward silently, to a zero Hessian.
    planted = BY_NAME["detached_backward"]
    # Without the planted op's require=: the missing capability must still not pass.
    report = check_op(
        planted.buggy, planted.case, seed=0, max_examples=2, batch_size=32, paths=PATHS
    )
    status = {r.path: r.status for r in report.records}
    assert status["higher.double_backward"] == "mismatch"
