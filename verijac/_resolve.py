"""Option resolution: what ``cases``, ``paths``, ``devices`` and ``dtypes`` options name.

Shared by `verijac.check`, ``check_op``, the CLI, the pytest plugin, benchmarks and tables:
each turns a user's option (a name, a glob, a tag or family, an object, or a list of those)
into the objects a check runs over, and refuses what matches nothing, saying how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import UsageError
from ._tolerances import dtype_name
from .paths._base import selects

if TYPE_CHECKING:
    from ._case import Case
    from .paths._base import AutogradPath

#: The dtypes a check runs in when none is named.
DEFAULT_DTYPES = ("float64", "float32")


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def resolve_cases(cases: Any = None) -> list[Case]:
    """Cases from names, globs, ``"tag:NAME"``, `Case` objects or a list of those.

    Raises:
        UsageError: a glob or tag matches nothing, or an item has another type.
        UnknownCaseError: a plain name is not registered.
    """
    from ._case import Case
    from ._registry import get_case, list_cases

    if cases is None:
        return list_cases()
    out: list[Case] = []
    for item in _as_list(cases):
        if isinstance(item, Case):
            found = [item]
        elif isinstance(item, str) and item.startswith("tag:"):
            found = list_cases(tag=item[4:])
            if not found:
                raise UsageError(f"no case has the tag {item[4:]!r} (cases={item!r})")
        elif isinstance(item, str) and any(ch in item for ch in "*?["):
            found = list_cases(item)
            if not found:
                raise UsageError(f"no case name matches the glob {item!r}")
        elif isinstance(item, str):
            found = [get_case(item)]
        else:
            raise UsageError(
                f"cases must be names, globs, 'tag:NAME' or verijac.Case objects, got {item!r}"
            )
        out += [c for c in found if all(c is not o for o in out)]
    return out


def resolve_paths(paths: Any = None, *, command: str = "check") -> list[AutogradPath]:
    """Paths from names, globs, family names, `AutogradPath` objects or a list of those.

    ``None`` is every path ``command`` runs by default (not opt-in; `AutogradPath.default_for`). An
    item ``"!PATTERN"`` removes the paths it selects (from the default selection when it is
    the only kind of item): ``["!functional.jacobian_strict"]``, ``["func", "!func.linearize"]``.

    Raises:
        UsageError: a glob or family matches nothing, or an item has another type.
        UnknownPathError: a plain name is not registered.
    """
    from .paths._base import FAMILIES, AutogradPath, get_path, list_paths

    if paths is None:
        return list_paths(default_for=command)
    items = _as_list(paths)
    excluded = [i[1:] for i in items if isinstance(i, str) and i.startswith("!")]
    items = [i for i in items if not (isinstance(i, str) and i.startswith("!"))]
    out: list[AutogradPath] = []
    if excluded and not items:  # only exclusions: from the command's default selection
        out = list_paths(default_for=command)
    for item in items:
        if isinstance(item, AutogradPath):
            found = [item]
        elif isinstance(item, str) and item in FAMILIES:
            found = list_paths(family=item)
        elif isinstance(item, str) and any(ch in item for ch in "*?["):
            found = list_paths(item)
            if not found:
                raise UsageError(f"no path name matches the glob {item!r}")
        elif isinstance(item, str):
            found = [get_path(item)]
        else:
            raise UsageError(
                f"paths must be names, globs, family names or verijac Path objects, got {item!r}"
            )
        out += [p for p in found if all(p.name != o.name for o in out)]
    for pattern in excluded:
        drop = [p for p in list_paths() if selects(pattern, p)]
        if not drop:
            raise UsageError(
                f"the exclusion '!{pattern}' matches no path (see `verijac list --paths`)"
            )
        out = [p for p in out if all(p.name != d.name for d in drop)]
    return out


def resolve_devices(devices: Any = None) -> list[tuple[str, str]]:
    """``(device, skip reason)`` pairs; the reason is empty for an available device."""
    import torch

    if devices is None:
        found = ["cpu"]
        if torch.cuda.is_available():
            found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if _mps_available():
            found.append("mps")
        return [(d, "") for d in found]
    out = []
    for item in _as_list(devices):
        try:
            dev = torch.device(item)
        except (RuntimeError, TypeError):
            raise UsageError(
                f"devices must be torch device names such as 'cpu', 'cuda', 'cuda:1' or 'mps', "
                f"got {item!r}"
            ) from None
        name = str(item)
        reason = ""
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                reason = f"device {name!r} skipped: CUDA is not available (torch.cuda.is_available() is False)"
            elif dev.index is not None and dev.index >= torch.cuda.device_count():
                reason = f"device {name!r} skipped: only {torch.cuda.device_count()} CUDA device(s)"
        elif dev.type == "mps":
            if not _mps_available():
                reason = f"device {name!r} skipped: MPS is not available"
        elif dev.type != "cpu":
            reason = f"device {name!r} skipped: verijac checks cpu, cuda and mps devices"
        out.append((name, reason))
    return out


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_dtypes(dtypes: Any = None) -> list[str]:
    """Canonical dtype names; ``None`` is float64 and float32."""
    if dtypes is None:
        return list(DEFAULT_DTYPES)
    out: list[str] = []
    for d in _as_list(dtypes):
        name = dtype_name(d)
        if name not in out:
            out.append(name)
    return out


def _positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be an int >= 1 or None, got {name}={value!r}")
    return value


__all__ = [
    "DEFAULT_DTYPES",
    "resolve_cases",
    "resolve_devices",
    "resolve_dtypes",
    "resolve_paths",
]
