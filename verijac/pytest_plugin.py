"""The verijac pytest plugin: the shipped matrix as tests, and a fixture for your own cases.

Loaded through the ``pytest11`` entry point. Loading it is cheap: torch, SymPy and Hypothesis
are imported only by hooks that collect or run verijac tests (see docs/pytest-plugin.md).

* ``pytest --verijac`` adds one test per case × path × device × dtype, with ids such as
  ``verijac::seed_tuple_io-functional.jacobian-cpu-float64``; ``--verijac-case``,
  ``--verijac-tag``, ``--verijac-path``, ``--verijac-device`` and ``--verijac-dtype`` narrow it.
* The ``verijac_check`` fixture checks your own cases (and ops) inside ordinary tests.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._errors import UsageError, VerijacError
from ._options import PROFILE_NAMES, digits, positive_int, seed, select_cases

if TYPE_CHECKING:
    from ._case import Case
    from ._report import Report
    from .paths._base import AutogradPath

#: The profile of the ``--verijac`` matrix and the fixture unless ``--verijac-profile`` says
#: otherwise: a test suite should stay quick; `verijac check` defaults to ``dev``.
DEFAULT_PROFILE = "ci"
_SEED_KEY = "verijac_seed"
_seed_key = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("verijac", "verijac: autograd against exact derivatives")
    group.addoption(
        "--verijac",
        action="store_true",
        default=False,
        help="collect the registered cases as tests: one per case, path, device and dtype",
    )
    many = [
        ("--verijac-case", "NAME", "case name, glob or tag:NAME for --verijac; repeatable"),
        (
            "--verijac-tag",
            "TAG",
            "only cases with this tag for --verijac; repeatable (all must match)",
        ),
        (
            "--verijac-path",
            "PATH",
            "path name, glob or family; repeatable (default: all not opt-in)",
        ),
        ("--verijac-device", "DEVICE", "cpu, cuda, cuda:1, mps; repeatable (default: available)"),
        ("--verijac-dtype", "DTYPE", "float64, float32, float16, bfloat16; repeatable"),
        ("--verijac-cases-dir", "DIR", "extra directory of cases; repeatable"),
    ]
    for flag, metavar, text in many:
        group.addoption(flag, action="append", default=[], metavar=metavar, help=text)
    group.addoption(
        "--verijac-seed",
        type=seed,
        default=None,
        metavar="SEED",
        help="seed (default: random, shown in the header)",
    )
    group.addoption(
        "--verijac-max-examples",
        type=positive_int,
        default=None,
        metavar="N",
        help="batches per check",
    )
    group.addoption(
        "--verijac-batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="points per batch",
    )
    group.addoption(
        "--verijac-reference-digits",
        type=digits,
        default=None,
        metavar="N",
        help="mpmath reference at N digits (17-1000) instead of float64",
    )
    group.addoption(
        "--verijac-baseline",
        default=None,
        metavar="RUN.json",
        help="a run file (`verijac check --json`): failures it already had are xfail (known)",
    )
    group.addoption(
        "--verijac-profile",
        choices=PROFILE_NAMES,
        default=None,
        help=f"search profile (default: {DEFAULT_PROFILE})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device")
    config.addinivalue_line(
        "markers", "slow: takes more than a few seconds (opt-in and compiled paths)"
    )
    config.addinivalue_line("markers", "verijac: a test of the --verijac matrix")
    if not config.getoption("verijac"):
        matrix_only = [
            flag
            for flag, dest in (
                ("--verijac-case", "verijac_case"),
                ("--verijac-tag", "verijac_tag"),
                ("--verijac-path", "verijac_path"),
            )
            if config.getoption(dest)
        ]
        if matrix_only:
            raise pytest.UsageError(
                f"{', '.join(matrix_only)} select(s) the --verijac matrix but --verijac is not "
                "given; add --verijac (the verijac_check fixture takes its case as an argument)"
            )
    seed = config.getoption("verijac_seed")
    workerinput = getattr(config, "workerinput", None)
    if seed is None and workerinput is not None:
        seed = workerinput.get(_SEED_KEY)  # chosen once by the xdist controller
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    config.stash[_seed_key] = int(seed)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker checks with the controller's seed."""
    node.workerinput[_SEED_KEY] = node.config.stash[_seed_key]


def pytest_report_header(config: pytest.Config) -> str | None:
    if not config.getoption("verijac"):
        return None
    profile = config.getoption("verijac_profile") or DEFAULT_PROFILE
    digits = config.getoption("verijac_reference_digits")
    reference = "" if digits is None else f", reference: mpmath at {digits} digits"
    return (
        f"verijac: seed={config.stash[_seed_key]}, profile={profile}{reference} "
        "(--verijac-seed reproduces)"
    )


# -- the matrix -----------------------------------------------------------------------------


class VerijacFailure(Exception):
    """A mismatch or error in a verijac test; the message is the records' messages."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """With ``--verijac``, append the matrix (before ``-k``/``-m`` deselect anything)."""
    if not config.getoption("verijac"):
        return
    matrix = VerijacMatrix.from_parent(session, path=config.rootpath / "verijac")
    items.extend(session.genitems(matrix))


def _load_dirs(config: pytest.Config) -> None:
    from ._registry import load_cases

    for d in config.getoption("verijac_cases_dir"):
        load_cases(d)


def _select_cases(config: pytest.Config) -> list[Case]:
    return select_cases(config.getoption("verijac_case"), config.getoption("verijac_tag"))


def _devices(config: pytest.Config) -> list[str]:
    """Device labels for item ids: as given, or ``cpu`` plus one ``cuda`` for all GPUs."""
    from ._resolve import resolve_devices

    given = config.getoption("verijac_device")
    if given:
        return [d for d, _ in resolve_devices(given)]  # validates the names
    found = [d for d, _ in resolve_devices(None)]
    out: list[str] = []
    for d in found:
        label = "cuda" if d.startswith("cuda") else d
        if label not in out:
            out.append(label)
    return out


def runtime_device(device: str) -> str:
    """The device an item labelled ``device`` runs on.

    Under pytest-xdist with several GPUs, worker ``gwN`` runs ``cuda`` items on
    ``cuda:{N % device_count}``; everything else runs where its label says.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if device != "cuda" or not (worker.startswith("gw") and worker[2:].isdigit()):
        return device
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{int(worker[2:]) % count}" if count > 1 else device


class VerijacMatrix(pytest.File):
    """The virtual collector of the ``--verijac`` matrix (no file on disk)."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            yield from self._items()
        except VerijacError as exc:  # one line, no traceback: it is a usage error
            raise self.CollectError(f"verijac: error: {exc}") from None

    def _items(self) -> Iterator[pytest.Item]:
        from ._resolve import resolve_dtypes, resolve_paths

        config = self.config
        _load_dirs(config)
        cases = _select_cases(config)
        paths = resolve_paths(config.getoption("verijac_path") or None)
        devices = _devices(config)
        dtypes = resolve_dtypes(config.getoption("verijac_dtype") or None)
        if not cases or not paths:
            raise UsageError(
                "--verijac selects no case or no path; check --verijac-case/--verijac-path"
            )
        for case in cases:
            for path in paths:
                for device in devices:
                    for dtype in dtypes:
                        yield VerijacItem.from_parent(
                            self,
                            name=f"{case.name}-{path.name}-{device}-{dtype}",
                            case=case,
                            autograd_path=path,
                            device=device,
                            dtype=dtype,
                        )


class VerijacItem(pytest.Item):
    """One case × path × device × dtype of the matrix."""

    def __init__(
        self,
        *,
        case: Case,
        autograd_path: AutogradPath,
        device: str,
        dtype: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.autograd_path = autograd_path
        self.device = device
        self.dtype = dtype
        self.add_marker(pytest.mark.verijac)
        if device.startswith("cuda"):
            self.add_marker(pytest.mark.gpu)
        if autograd_path.opt_in or autograd_path.family == "compiled":
            self.add_marker(pytest.mark.slow)

    def runtest(self) -> None:
        from ._runner import check

        config = self.config
        report = check(
            self.case,
            paths=[self.autograd_path],
            devices=[runtime_device(self.device)],
            dtypes=[self.dtype],
            seed=config.stash[_seed_key],
            max_examples=config.getoption("verijac_max_examples"),
            batch_size=config.getoption("verijac_batch_size"),
            profile=config.getoption("verijac_profile") or DEFAULT_PROFILE,
            reference_digits=config.getoption("verijac_reference_digits"),
            baseline=config.getoption("verijac_baseline"),
        )
        if report.failures:
            raise VerijacFailure(report.failure_text())
        if report.records and all(r.status in ("xfail", "known") for r in report.records):
            pytest.xfail("; ".join(r.reason for r in report.records))
        if report.records and all(r.status in ("unsupported", "skipped") for r in report.records):
            pytest.skip("; ".join(f"{r.status}: {r.reason}" for r in report.records))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (VerijacFailure, VerijacError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return self.path, None, f"verijac: {self.name}"


# -- the fixture ----------------------------------------------------------------------------


def _check(
    case: Any, op: Callable[..., Any] | None, require: Sequence[str], opts: dict[str, Any]
) -> Report:
    """`check` or `check_op` with the fixture's options, unknown options named clearly.

    Raises:
        UsageError: an unknown option, or ``require`` without ``op``.
    """
    import inspect

    from ._checkop import check_op
    from ._runner import check

    if op is None and require:
        raise UsageError("require=... applies with op=... only")
    target: Callable[..., Report] = check_op if op is not None else check
    if op is not None:
        opts = {**opts, "require": require}
    accepted = set(inspect.signature(target).parameters) - {"op", "case", "cases"}
    unknown = sorted(set(opts) - accepted)
    if unknown:
        raise UsageError(
            f"unknown option(s) {', '.join(map(repr, unknown))}; "
            f"{'check_op' if op is not None else 'check'} takes {', '.join(sorted(accepted))}"
        )
    return check_op(op, case, **opts) if op is not None else check(case, **opts)


def _defaults(config: pytest.Config) -> dict[str, Any]:
    return {
        "devices": config.getoption("verijac_device") or None,
        "dtypes": config.getoption("verijac_dtype") or None,
        "seed": config.stash[_seed_key],
        "max_examples": config.getoption("verijac_max_examples"),
        "batch_size": config.getoption("verijac_batch_size"),
        "profile": config.getoption("verijac_profile") or DEFAULT_PROFILE,
        "reference_digits": config.getoption("verijac_reference_digits"),
        "baseline": config.getoption("verijac_baseline"),
    }


@pytest.fixture
def verijac_check(request: pytest.FixtureRequest) -> Callable[..., Report]:
    """A callable ``verijac_check(case, **options) -> Report`` that fails the test on a mismatch.

    ``case`` is a `verijac.Case`, a registered name, a glob or ``"tag:NAME"``; ``options`` are
    those of `verijac.check` (``paths``, ``devices``, ``dtypes``, ``seed``, ``max_examples``,
    ``batch_size``, ``profile``, ``time_budget``, ``tolerances`` …). Pass ``op=fn`` (and
    ``require=(...)``) to check your own function against the case with `verijac.check_op`.
    Defaults come from the ``--verijac-*`` options; the seed is the session's (see the header).
    """
    config = request.config
    defaults = _defaults(config)
    loaded = False

    def run(
        case: Any,
        *,
        op: Callable[..., Any] | None = None,
        require: Sequence[str] = (),
        **options: Any,
    ) -> Report:
        __tracebackhide__ = True
        nonlocal loaded
        if not loaded:
            _load_dirs(config)
            loaded = True
        opts = {**defaults, **options}
        try:
            report = _check(case, op, require, opts)
        except VerijacError as exc:
            pytest.fail(f"verijac_check: {exc}", pytrace=False)
        if report.failures:
            pytest.fail(report.failure_text(), pytrace=False)
        return report

    return run


__all__ = ["VerijacItem", "VerijacMatrix", "runtime_device", "verijac_check"]
