"""Autograd paths: one module per family, plus the registry.

Importing this package does not import torch; the built-in catalogue registers on first use
of `get_path` / `list_paths`.
"""

from __future__ import annotations

from ._base import CAPABILITIES as CAPABILITIES
from ._base import COMPUTES as COMPUTES
from ._base import FAMILIES as FAMILIES
from ._base import AutogradPath as AutogradPath
from ._base import BehaviourMismatch as BehaviourMismatch
from ._base import Path as Path  # the old name of AutogradPath
from ._base import PathResult as PathResult
from ._base import Problem as Problem
from ._base import Truth as Truth
from ._base import Unsupported as Unsupported
from ._base import get_path as get_path
from ._base import list_paths as list_paths
from ._base import path as path
from ._base import register_path as register_path

__all__ = [
    "CAPABILITIES",
    "COMPUTES",
    "FAMILIES",
    "AutogradPath",
    "BehaviourMismatch",
    "Path",
    "PathResult",
    "Problem",
    "Truth",
    "Unsupported",
    "get_path",
    "list_paths",
    "path",
    "register_path",
]
