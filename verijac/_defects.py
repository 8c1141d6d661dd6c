"""Known torch defects: version-scoped data, matched against check records.

A defect entry says what torch gets wrong, on which torch versions (a `packaging` specifier),
devices and dtypes, and for what: case names (``cases``) or kinds of op in the function's
autograd graph (``op_kinds``, e.g. any `torch.autograd.Function` with a ``jvp``), crossed with
path names, globs or families. The shipped entries live in ``verijac/torch_defects/*.toml``;
users add their own with `load_defect_file` or `register_defect`.

A record a matching entry covers is reported as ``xfail`` ("known torch defect ID") when it
fails, and as ``xpass`` when it passes on a torch version the entry covers; on a torch version
outside the entry's specifier the entry does not apply: a failure is a failure again.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Any

from ._errors import UsageError

if TYPE_CHECKING:
    from .paths._base import AutogradPath

#: What an op in the function's autograd graph may be (see `op_kinds`).
OP_KINDS = (
    "autograd_function",
    "autograd_function_jvp",
    "autograd_function_without_jvp",
    "autograd_function_vmap",
    "linalg",
)
#: Record statuses an entry may turn into ``xfail``.
SHOWS = ("mismatch", "error")
_FIELDS = {
    "id": str,
    "summary": str,
    "torch": str,
    "measured": list,
    "cases": list,
    "op_kinds": list,
    "paths": list,
    "devices": list,
    "dtypes": list,
    "shows": list,
    "point": str,
    "exact": str,
    "torch_value": str,
    "details": str,
    "reproduce": str,
}
_REQUIRED = (
    "id",
    "summary",
    "torch",
    "measured",
    "paths",
    "point",
    "exact",
    "torch_value",
    "reproduce",
)


class DefectError(UsageError):
    """A torch-defects file or entry is malformed."""


@dataclass(frozen=True)
class TorchDefect:
    """One known torch defect.

    Attributes:
        id: a unique kebab-case name, shown in records (``known torch defect ID``).
        summary: one line: what torch gets wrong.
        torch: the torch versions it applies to, a `packaging` specifier (``">=2.14,<2.15"``).
        measured: the torch versions it was measured on (defect present).
        cases: case-name globs it applies to.
        op_kinds: kinds of op in the function's graph it applies to (`OP_KINDS`).
        paths: path names, globs or families.
        devices: device types or names (``cpu``, ``cuda``); empty: every device.
        dtypes: dtype names; empty: every dtype.
        shows: the statuses it explains (``mismatch``, ``error``).
        point, exact, torch_value: a point where it shows, the exact value and torch's there.
        details: the mechanism, where known.
        reproduce: a short script using torch alone that shows it.
        source: the file the entry came from.
    """

    id: str
    summary: str
    torch: str
    measured: tuple[str, ...]
    paths: tuple[str, ...]
    point: str
    exact: str
    torch_value: str
    reproduce: str
    cases: tuple[str, ...] = ()
    op_kinds: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    shows: tuple[str, ...] = ("mismatch",)
    details: str = ""
    source: str = "<user>"

    def applies_to_version(self, version: str) -> bool:
        """Whether the torch ``version`` (``torch.__version__``) is in `torch`."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version

        return SpecifierSet(self.torch).contains(Version(version).public, prereleases=True)

    def covers(
        self, *, case: str, op_kinds: Iterable[str], path: AutogradPath, device: str, dtype: str
    ) -> bool:
        """Whether this entry's scope (not its versions) covers that record."""
        from .paths._base import selects

        in_scope = any(fnmatch.fnmatchcase(case, g) for g in self.cases) or bool(
            set(self.op_kinds) & set(op_kinds)
        )
        return (
            in_scope
            and any(selects(p, path) for p in self.paths)
            and (not self.devices or any(_device_matches(d, device) for d in self.devices))
            and (not self.dtypes or dtype in self.dtypes)
        )


def _device_matches(pattern: str, device: str) -> bool:
    return device == pattern or device.split(":")[0] == pattern


_DEFECTS: dict[str, TorchDefect] = {}
_LOADED = False


def register_defect(defect: TorchDefect, *, replace: bool = False) -> TorchDefect:
    """Add a known torch defect to the registry.

    Raises:
        DefectError: another entry has that id (pass ``replace=True``), or the entry is invalid.
    """
    _ensure_loaded()
    if not isinstance(defect, TorchDefect):
        raise DefectError(f"register_defect expects a verijac.TorchDefect, got {defect!r}")
    _validate(defect, defect.source)
    old = _DEFECTS.get(defect.id)
    if old is not None and old is not defect and not replace:
        raise DefectError(
            f"duplicate torch defect id {defect.id!r}: in {old.source} and {defect.source}; "
            "rename one or pass replace=True"
        )
    _DEFECTS[defect.id] = defect
    return defect


def list_defects() -> list[TorchDefect]:
    """Every registered torch defect (shipped ones first, each file's in order)."""
    _ensure_loaded()
    return list(_DEFECTS.values())


def get_defect(defect_id: str) -> TorchDefect:
    """The entry with that id.

    Raises:
        DefectError: no entry has it.
    """
    _ensure_loaded()
    try:
        return _DEFECTS[defect_id]
    except KeyError:
        raise DefectError(f"no torch defect has the id {defect_id!r}") from None


def find_defect(
    *,
    case: str,
    path: AutogradPath,
    device: str,
    dtype: str,
    op_kinds: Iterable[str] = (),
    torch_version: str | None = None,
) -> TorchDefect | None:
    """The first entry covering that record on ``torch_version`` (default: the running torch)."""
    if torch_version is None:
        import torch

        torch_version = str(torch.__version__)
    kinds = tuple(op_kinds)
    entries = tuple(list_defects())
    # A run asks once per record (16,280 in `ci`) about a few hundred distinct scopes; the
    # answers hold while the registry holds the same entries (compared item by item, by
    # identity first).
    global _FOUND_FOR
    if entries != _FOUND_FOR:
        _FOUND.clear()
        _FOUND_FOR = entries
    key = (case, kinds, path.name, path.family, device, dtype, torch_version)
    if key in _FOUND:
        return _FOUND[key]
    found = None
    for d in entries:
        if d.covers(
            case=case, op_kinds=kinds, path=path, device=device, dtype=dtype
        ) and d.applies_to_version(torch_version):
            found = d
            break
    if len(_FOUND) >= _FOUND_MAX:
        _FOUND.clear()
    _FOUND[key] = found
    return found


#: `find_defect`'s answers by the record's scope, for the registry's entries `_FOUND_FOR`.
_FOUND: dict[tuple[Any, ...], TorchDefect | None] = {}
_FOUND_FOR: tuple[TorchDefect, ...] = ()
_FOUND_MAX = 65536


def load_defect_file(path: str | FilePath) -> list[TorchDefect]:
    """Read a TOML file of ``[[defect]]`` tables and register its entries.

    Raises:
        DefectError: the file cannot be read, is not TOML, or an entry is invalid (the
            message names the file and the entry).
    """
    entries = parse_defects(_read(FilePath(path)), source=str(path))
    for d in entries:
        register_defect(d)
    return entries


def _read(path: FilePath) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefectError(f"cannot read torch-defects file {str(path)!r}: {exc}") from None


def parse_defects(text: str, *, source: str) -> list[TorchDefect]:
    """Parse and validate the ``[[defect]]`` tables of a TOML text.

    Raises:
        DefectError: not TOML, or an entry is invalid.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefectError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"defect"}
    if unknown:
        raise DefectError(
            f"{source}: unknown top-level keys {sorted(unknown)}; expected [[defect]]"
        )
    tables = data.get("defect", [])
    if not isinstance(tables, list):
        raise DefectError(f"{source}: 'defect' must be an array of tables ([[defect]])")
    out = []
    for k, table in enumerate(tables):
        out.append(_entry(table, f"{source}, defect #{k + 1}"))
    return out


def _entry(table: Mapping[str, Any], where: str) -> TorchDefect:
    name = table.get("id")
    if isinstance(name, str):
        where = f"{where} ({name!r})"
    unknown = sorted(set(table) - set(_FIELDS))
    if unknown:
        raise DefectError(f"{where}: unknown fields {unknown}; known: {sorted(_FIELDS)}")
    missing = [k for k in _REQUIRED if k not in table]
    if missing:
        raise DefectError(f"{where}: missing fields {missing}")
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = _FIELDS[key]
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DefectError(f"{where}: {key} must be a list of strings, got {value!r}")
            values[key] = tuple(value)
        elif not isinstance(value, str):
            raise DefectError(f"{where}: {key} must be a string, got {value!r}")
        else:
            values[key] = value
    defect = TorchDefect(**values, source=where.split(",")[0])
    _validate(defect, where)
    return defect


def _validate(d: TorchDefect, where: str) -> None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    from .paths._base import FAMILIES, list_paths, selects

    if not d.id or not all(c.isalnum() or c == "-" for c in d.id):
        raise DefectError(f"{where}: id must be non-empty kebab-case (a-z, 0-9, -), got {d.id!r}")
    try:
        SpecifierSet(d.torch)
    except InvalidSpecifier:
        raise DefectError(
            f"{where}: torch must be a version specifier such as '>=2.14,<2.15', got {d.torch!r}"
        ) from None
    for v in d.measured:
        try:
            Version(v)
        except InvalidVersion:
            raise DefectError(f"{where}: measured holds a non-version {v!r}") from None
    if not d.measured:
        raise DefectError(f"{where}: measured must name the torch versions it was measured on")
    if not d.cases and not d.op_kinds:
        raise DefectError(f"{where}: give cases (case-name globs) or op_kinds {OP_KINDS}")
    bad = [k for k in d.op_kinds if k not in OP_KINDS]
    if bad:
        raise DefectError(f"{where}: unknown op_kinds {bad}; known: {list(OP_KINDS)}")
    bad = [s for s in d.shows if s not in SHOWS]
    if bad or not d.shows:
        raise DefectError(f"{where}: shows must list statuses from {list(SHOWS)}, got {d.shows!r}")
    if not d.paths:
        raise DefectError(f"{where}: paths must name at least one path, glob or family")
    catalogue = list_paths(include_opt_in=True)
    for pattern in d.paths:
        if pattern not in FAMILIES and not any(selects(pattern, p) for p in catalogue):
            raise DefectError(
                f"{where}: path pattern {pattern!r} matches no path (see `verijac list --paths`)"
            )
    if not d.reproduce.strip():
        raise DefectError(f"{where}: reproduce must hold a script that shows the defect")


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from importlib import resources

    try:
        folder = resources.files("verijac") / "torch_defects"
        for item in sorted(folder.iterdir(), key=lambda f: f.name):
            if item.name.endswith(".toml"):
                text = item.read_text(encoding="utf-8")
                for d in parse_defects(text, source=f"verijac/torch_defects/{item.name}"):
                    if d.id in _DEFECTS:
                        raise DefectError(f"duplicate shipped torch defect id {d.id!r}")
                    _DEFECTS[d.id] = d
    except BaseException:
        _LOADED = False
        _DEFECTS.clear()
        raise


# -- the documentation page ------------------------------------------------------------------

_PAGE_HEAD = """# Known torch defects

<!-- Generated by `verijac defects --markdown > docs/torch-defects.md`; edit
verijac/torch_defects/*.toml instead. A test checks that this page is up to date. -->

verijac keeps the torch defects its checks have found as data: each entry below gives the torch
versions it applies to (a version specifier) and those it was measured on, what it covers
(cases, or kinds of op such as any `torch.autograd.Function` with a `jvp`, crossed with paths,
devices and dtypes), a point where it shows with the exact and the torch value, and a script
that reproduces it with torch alone, ready for a torch bug report.

On a covered torch version a record the entry covers is reported as `xfail` (*known torch
defect ID*) when it fails and as `xpass` when it passes (the defect did not show: it may be
fixed, or this seed did not reach it). On other torch versions the entry does not apply: a
failure is a failure. `verijac defects` lists the entries and whether each applies to the
installed torch; add your own with `verijac.load_defect_file(PATH)` or
`verijac defects --file PATH`.

| id | torch | measured on | summary |
| --- | --- | --- | --- |
"""


def markdown(defects: Sequence[TorchDefect]) -> str:
    """docs/torch-defects.md for ``defects``: a table, then a section per entry."""
    rows = [
        f"| [{d.id}](#{d.id}) | `{d.torch}` | {', '.join(d.measured)} | {_cell(d.summary)} |"
        for d in defects
    ]
    parts = [_PAGE_HEAD + "\n".join(rows) + "\n"]
    for d in defects:
        scope = []
        if d.cases:
            scope.append("cases " + ", ".join(f"`{c}`" for c in d.cases))
        if d.op_kinds:
            scope.append("ops of kind " + ", ".join(f"`{k}`" for k in d.op_kinds))
        lines = [
            f"## {d.id}",
            "",
            d.summary + ".",
            "",
            f"- **torch versions**: `{d.torch}`; measured on {', '.join(d.measured)}",
            f"- **covers**: {' or '.join(scope)}; paths {', '.join(f'`{p}`' for p in d.paths)}"
            + f"; devices: {', '.join(d.devices) or 'all'}; dtypes: {', '.join(d.dtypes) or 'all'}",
            f"- **reported as xfail when the record is**: {', '.join(d.shows)}",
            f"- **at** {d.point}: exact {d.exact}; torch {d.torch_value}",
        ]
        if d.details:
            lines.append(f"- **mechanism**: {d.details}")
        lines += ["", "```python", d.reproduce.strip("\n"), "```", ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# -- the op kinds in a function's autograd graph ------------------------------------------


def op_kinds(outputs: Any) -> frozenset[str]:
    """The `OP_KINDS` found in the autograd graph behind ``outputs`` (tensors, nested).

    A `torch.autograd.Function` shows as a graph node whose ``_forward_cls`` is the Function;
    it has a ``jvp`` (or ``vmap``) when the class overrides that staticmethod
    (``autograd_function_jvp``; else ``autograd_function_without_jvp``).
    """
    import torch

    base = torch.autograd.Function
    stack = [t.grad_fn for t in _tensors(outputs) if t.grad_fn is not None]
    seen: set[int] = set()
    kinds: set[str] = set()
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        if type(fn).__name__.startswith("Linalg"):  # LinalgSvdBackward0, LinalgInvExBackward0…
            kinds.add("linalg")
        cls = getattr(fn, "_forward_cls", None)
        if isinstance(cls, type) and issubclass(cls, base):
            kinds.add("autograd_function")
            if _overrides(cls, "jvp"):
                kinds.add("autograd_function_jvp")
            else:
                kinds.add("autograd_function_without_jvp")
            if _overrides(cls, "vmap") or getattr(cls, "generate_vmap_rule", False):
                kinds.add("autograd_function_vmap")
        stack.extend(f for f, _ in getattr(fn, "next_functions", ()))
    return frozenset(kinds)


def _overrides(cls: type, name: str) -> bool:
    import torch

    for klass in cls.__mro__:
        if klass in (torch.autograd.Function,) or klass.__module__.startswith("torch."):
            return False
        if name in vars(klass):
            return True
    return False


def _tensors(value: Any) -> Sequence[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


__all__ = [
    "OP_KINDS",
    "DefectError",
    "TorchDefect",
    "find_defect",
    "get_defect",
    "list_defects",
    "load_defect_file",
    "markdown",
    "op_kinds",
    "parse_defects",
    "register_defect",
]
