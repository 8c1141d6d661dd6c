"""The built-in catalogue: importing this module registers every family's paths.

``python -m verijac.paths._catalogue`` prints the catalogue table that docs/paths.md embeds.
"""

from __future__ import annotations

import importlib

from ._base import AutogradPath, list_paths

#: The family modules, imported (and so registered) in catalogue order.
MODULES = ("reverse", "functional", "func", "forward", "higher_order", "compiled", "contract")
for _module in MODULES:
    importlib.import_module(f".{_module}", __package__)

#: The families registered here: every family, from the first lookup (``contract`` runs by
#: default under ``check-op`` only; see `verijac.paths.AutogradPath.default_for`).
BUILTIN_FAMILIES = (
    "reverse",
    "functional",
    "func",
    "forward",
    "higher-order",
    "compiled",
    "contract",
)

#: Where the generated table sits in docs/paths.md.
TABLE_START = "<!-- catalogue:start -->"
TABLE_END = "<!-- catalogue:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(p: AutogradPath) -> str:
    requires = ", ".join(sorted(p.requires)) or "—"
    uses = ", ".join(sorted(p.uses)) or "—"
    flags = ("batched" if p.batched else "per point") + (", opt-in" if p.opt_in else "")
    if "check" not in p.default_for:
        flags += ", default for " + ", ".join(sorted(p.default_for)) + " only"
    cells = [
        f"`{p.name}`",
        p.family,
        f"`{_cell(p.call)}`",
        p.computes,
        _cell(p.description),
        requires,
        uses,
        flags,
        _cell(p.cost),
    ]
    return "| " + " | ".join(cells) + " |"


def catalogue_table() -> str:
    """The built-in catalogue as a Markdown table, one row per path, in catalogue order."""
    head = [
        "| name | family | torch call | computes | what it checks | requires | uses | batching | cost |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + [_row(p) for p in list_paths(family=BUILTIN_FAMILIES)])


if __name__ == "__main__":
    print(catalogue_table())
