"""Command-line option types and names shared by the CLI and the pytest plugin.

Kept free of torch, SymPy and Hypothesis imports: the pytest plugin loads this module in every
pytest session, including sessions that collect no verijac test.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ._errors import UsageError

if TYPE_CHECKING:
    from ._case import Case

#: Exit statuses of the ``verijac`` command (docs/cli.md).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: The search profiles (`verijac.strategies.PROFILES` defines them; a test keeps both in step).
PROFILE_NAMES = ("ci", "dev", "thorough")


def _integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An option value that must be an integer >= 1 (examples, batch size)."""
    return _integer(text, 1)


def seed(text: str) -> int:
    """A seed: an integer >= 0."""
    return _integer(text, 0)


def digits(text: str) -> int:
    """Decimal digits for the mpmath reference: an integer from 17 to 1000."""
    from ._precise import MAX_DIGITS, MIN_DIGITS

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not MIN_DIGITS <= value <= MAX_DIGITS:
        raise argparse.ArgumentTypeError(
            f"expected an integer from {MIN_DIGITS} to {MAX_DIGITS}, got {text!r}"
        )
    return value


def jobs(text: str) -> int | str:
    """Worker processes: an integer >= 1, or ``auto`` (one per CPU, at most 8)."""
    if text == "auto":
        return text
    return _integer(text, 1)


def seconds(text: str) -> float:
    """A finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds > 0, got {text!r}"
        ) from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def select_cases(names: Sequence[str], tags: Sequence[str]) -> list[Case]:
    """Cases by name / glob (all when none is given), narrowed to those with every tag, sorted.

    Raises:
        UnknownCaseError: a name matches no case.
        UsageError: no selected case carries the tags.
    """
    from ._registry import list_cases
    from ._resolve import resolve_cases

    cases = resolve_cases(list(names) if names else None)
    if tags:
        tagged = {c.name for c in list_cases(tag=tags)}
        cases = [c for c in cases if c.name in tagged]
        if not cases:
            raise UsageError(
                f"no selected case has the tag(s) {sorted(tags)} (see `verijac list --tag TAG`)"
            )
    return sorted(cases, key=lambda c: c.name)


def load_dirs(dirs: Iterable[str]) -> None:
    """Load extra cases directories; any failure becomes a one-line `UsageError`."""
    import os
    from pathlib import Path

    from ._registry import load_cases

    for d in dirs:
        path = Path(d)
        if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
            raise UsageError(f"cases directory {d!r} is not readable (check its permissions)")
        load_cases(path)
