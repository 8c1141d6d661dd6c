"""The case registry: shipped cases, extra case directories, lookup by name, tag or glob."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import os
import pkgutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import CaseError, UnknownCaseError, UsageError, VerijacError

if TYPE_CHECKING:
    from ._case import Case

_CASES: dict[str, Case] = {}
_SOURCES: dict[str, str] = {}
_LOADED_SHIPPED = False
_LOADED_DIRS: set[Path] = set()

#: Environment variable with extra case directories (``os.pathsep``-separated).
CASES_PATH_ENV = "VERIJAC_CASES_PATH"


def register_case(case: Case, *, source: str = "<user>", replace: bool = False) -> Case:
    """Add a case to the registry so `get_case` and `verijac check` find it.

    Raises:
        CaseError: another case already has that name (pass ``replace=True`` to override).
    """
    from ._case import Case

    if not isinstance(case, Case):
        raise CaseError(f"register_case expects a verijac.Case, got {case!r}")
    if case.name in _CASES and not replace and _CASES[case.name] is not case:
        raise CaseError(
            f"duplicate case name {case.name!r}: defined in {_SOURCES[case.name]} and {source}; "
            "rename one of them"
        )
    _CASES[case.name] = case
    _SOURCES[case.name] = source
    return case


def _ensure_loaded() -> None:
    global _LOADED_SHIPPED
    if _LOADED_SHIPPED:
        return
    # Set first: the shipped modules themselves call into the registry while importing.
    _LOADED_SHIPPED = True
    try:
        import verijac_cases

        for info in sorted(pkgutil.iter_modules(verijac_cases.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"verijac_cases.{info.name}")
            for case in module_cases(module, f"verijac_cases.{info.name}"):
                register_case(case, source=f"verijac_cases.{info.name}")
        _text_cases(Path(verijac_cases.__path__[0]))
    except BaseException:
        _LOADED_SHIPPED = False
        _CASES.clear()
        _SOURCES.clear()
        raise
    for extra in os.environ.get(CASES_PATH_ENV, "").split(os.pathsep):
        if extra:
            try:
                load_cases(extra)
            except VerijacError as exc:
                raise type(exc)(f"{CASES_PATH_ENV}: {exc}") from None


def _where(exc: BaseException, directory: Path) -> str:
    """``file:line: `` of the innermost traceback frame inside ``directory``, or ``""``."""
    import traceback

    found = ""
    root = str(directory.resolve())
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(root):
            found = f"{frame.filename}:{frame.lineno}: "
    return found


def module_cases(module: object, source: str) -> list[Case]:
    """The ``CASES`` a case module defines: a list or tuple of `verijac.Case` (none if absent).

    Raises:
        CaseError: ``CASES`` is not a list or tuple, or holds something that is not a Case;
            the message names the file (``source``) and the item.
    """
    from ._case import Case

    cases = getattr(module, "CASES", ())
    if not isinstance(cases, (list, tuple)):
        raise CaseError(
            f"{source}: CASES must be a list of verijac.Case, got {_short(cases)} of type "
            f"{type(cases).__name__}; write CASES = [verijac.Case(...), ...]"
        )
    for k, case in enumerate(cases):
        if not isinstance(case, Case):
            raise CaseError(
                f"{source}: CASES[{k}] must be a verijac.Case, got {_short(case)} of type "
                f"{type(case).__name__}; build it with verijac.Case(name, inputs=…, outputs=…, "
                "domain=…)"
            )
    return list(cases)


def _short(value: object) -> str:
    """``repr(value)``, cut to 80 characters (a module's value may be huge)."""
    try:
        text = repr(value)
    except Exception:  # a user object whose __repr__ fails
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _text_cases(directory: Path) -> list[str]:
    names = []
    for path in sorted(directory.glob("*.toml")):
        from ._textcase import load_case_file

        case = load_case_file(path)
        register_case(case, source=str(path))
        names.append(case.name)
    return names


def load_cases(directory: str | os.PathLike[str]) -> list[str]:
    """Load every case from a directory: ``*.py`` modules defining ``CASES`` and ``*.toml`` files.

    Python files are your own code and are imported; TOML files are parsed safely, never
    executed. Returns the names of the cases loaded.

    Raises:
        UsageError: the directory does not exist.
        CaseError: a file defines an invalid or duplicate case.
    """
    path = Path(directory).resolve()
    if not path.is_dir():
        raise UsageError(f"cases directory {str(directory)!r} does not exist or is not a directory")
    _ensure_loaded()
    if path in _LOADED_DIRS:
        return []
    names: list[str] = []
    for file in sorted(path.glob("*.py")):
        if file.name.startswith("_"):
            continue
        mod_name = f"verijac_user_cases_{abs(hash(str(file)))}"
        spec = importlib.util.spec_from_file_location(mod_name, file)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except KeyboardInterrupt:
            sys.modules.pop(mod_name, None)
            raise
        except VerijacError as exc:
            sys.modules.pop(mod_name, None)
            if str(file) in str(exc):
                raise
            raise type(exc)(
                f"could not load cases from {str(file)!r}: {_where(exc, path)}{exc}"
            ) from None
        except BaseException as exc:  # the user's module failed, or called sys.exit()
            sys.modules.pop(mod_name, None)
            what = (
                f"it called sys.exit({exc.code!r}) while being imported"
                if isinstance(exc, SystemExit)
                else f"{type(exc).__name__}: {exc}".rstrip(": ")
            )
            raise CaseError(
                f"could not load cases from {str(file)!r}: {_where(exc, path)}{what}; a case "
                "module must import cleanly and define CASES = [verijac.Case(...), ...]"
            ) from None
        for case in module_cases(module, str(file)):
            register_case(case, source=str(file))
            names.append(case.name)
    names += _text_cases(path)
    _LOADED_DIRS.add(path)
    return names


def get_case(name: str) -> Case:
    """The registered case called ``name``.

    Raises:
        UnknownCaseError: no such case; the message suggests close names.
    """
    _ensure_loaded()
    try:
        return _CASES[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(name), list(_CASES), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownCaseError(
            f"no case named {name!r}{hint} (`verijac list` shows all {len(_CASES)} cases)"
        ) from None


def list_cases(pattern: str | None = None, *, tag: str | Iterable[str] | None = None) -> list[Case]:
    """Registered cases, sorted by name, filtered by a glob on the name and by tag(s).

    Args:
        pattern: a glob such as ``"seed_*"`` (``None`` matches all).
        tag: a tag, or several tags that must all be present.
    """
    _ensure_loaded()
    tags = {tag} if isinstance(tag, str) else set(tag or ())
    out = []
    for name in sorted(_CASES):
        case = _CASES[name]
        if pattern is not None and not fnmatch.fnmatchcase(name, pattern):
            continue
        if not tags <= case.tags:
            continue
        out.append(case)
    return out


def case_source(name: str) -> str:
    """Where the case called ``name`` was defined."""
    _ensure_loaded()
    return _SOURCES.get(name, "<unknown>")
