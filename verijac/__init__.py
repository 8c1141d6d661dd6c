"""verijac: verify PyTorch autograd against exact symbolic derivatives.

Importing verijac is cheap: SymPy and torch load when a name that needs them is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    CaseError as CaseError,
)
from ._errors import (
    DomainError as DomainError,
)
from ._errors import (
    InternalError as InternalError,
)
from ._errors import (
    ParseError as ParseError,
)
from ._errors import (
    ShapeError as ShapeError,
)
from ._errors import (
    TableError as TableError,
)
from ._errors import (
    UnknownCaseError as UnknownCaseError,
)
from ._errors import (
    UnknownPathError as UnknownPathError,
)
from ._errors import (
    UnsupportedFunctionError as UnsupportedFunctionError,
)
from ._errors import (
    UsageError as UsageError,
)
from ._errors import (
    VerijacError as VerijacError,
)

if TYPE_CHECKING:
    from . import strategies as strategies
    from ._case import Case as Case
    from ._case import KnownPoint as KnownPoint
    from ._case import array as array
    from ._case import scalar as scalar
    from ._checkop import assert_op as assert_op
    from ._checkop import check_op as check_op
    from ._compare import compare as compare
    from ._compare import ulp_error as ulp_error
    from ._defects import DefectError as DefectError
    from ._defects import TorchDefect as TorchDefect
    from ._defects import list_defects as list_defects
    from ._defects import load_defect_file as load_defect_file
    from ._defects import register_defect as register_defect
    from ._diagnosis import Diagnosis as Diagnosis
    from ._diff import Diff as Diff
    from ._diff import diff_runs as diff_runs
    from ._domain import Interval as Interval
    from ._functions import register_function as register_function
    from ._functions import unregister_function as unregister_function
    from ._parse import parse as parse
    from ._registry import get_case as get_case
    from ._registry import list_cases as list_cases
    from ._registry import load_cases as load_cases
    from ._registry import register_case as register_case
    from ._report import Record as Record
    from ._report import Report as Report
    from ._runfile import RunFileError as RunFileError
    from ._runfile import load_run as load_run
    from ._runfile import merge_runs as merge_runs
    from ._runner import check as check
    from ._table_regress import regress as regress
    from ._tables import Table as Table
    from ._tables import build_table as build_table
    from ._tables import read_table as read_table
    from ._tables import write_table as write_table
    from ._textcase import case_from_text as case_from_text
    from ._textcase import load_case_file as load_case_file
    from ._tolerances import Tolerance as Tolerance
    from .paths import AutogradPath as AutogradPath
    from .paths import Path as Path
    from .paths import PathResult as PathResult
    from .paths import Problem as Problem
    from .paths import get_path as get_path
    from .paths import list_paths as list_paths
    from .paths import register_path as register_path

__version__ = "0.1.0"

# public name → module that defines it; loaded on first access (PEP 562).
_LAZY: dict[str, str] = {
    "Case": "._case",
    "KnownPoint": "._case",
    "array": "._case",
    "scalar": "._case",
    "Interval": "._domain",
    "register_function": "._functions",
    "unregister_function": "._functions",
    "parse": "._parse",
    "get_case": "._registry",
    "list_cases": "._registry",
    "load_cases": "._registry",
    "register_case": "._registry",
    "check": "._runner",
    "DefectError": "._defects",
    "TorchDefect": "._defects",
    "list_defects": "._defects",
    "load_defect_file": "._defects",
    "register_defect": "._defects",
    "Diff": "._diff",
    "diff_runs": "._diff",
    "RunFileError": "._runfile",
    "Table": "._tables",
    "build_table": "._tables",
    "read_table": "._tables",
    "write_table": "._tables",
    "regress": "._table_regress",
    "load_run": "._runfile",
    "merge_runs": "._runfile",
    "Diagnosis": "._diagnosis",
    "Record": "._report",
    "Report": "._report",
    "Tolerance": "._tolerances",
    "compare": "._compare",
    "ulp_error": "._compare",
    "check_op": "._checkop",
    "assert_op": "._checkop",
    "case_from_text": "._textcase",
    "load_case_file": "._textcase",
    "AutogradPath": ".paths",
    "Path": ".paths",
    "PathResult": ".paths",
    "Problem": ".paths",
    "get_path": ".paths",
    "list_paths": ".paths",
    "register_path": ".paths",
}
#: Public submodules, imported on first access.
_SUBMODULES = {"strategies", "paths"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'verijac' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AutogradPath",
    "Case",
    "CaseError",
    "DefectError",
    "Diagnosis",
    "Diff",
    "DomainError",
    "InternalError",
    "Interval",
    "KnownPoint",
    "ParseError",
    "Path",  # the old name of AutogradPath
    "PathResult",
    "Problem",
    "Record",
    "Report",
    "RunFileError",
    "ShapeError",
    "Table",
    "TableError",
    "Tolerance",
    "TorchDefect",
    "UnknownCaseError",
    "UnknownPathError",
    "UnsupportedFunctionError",
    "UsageError",
    "VerijacError",
    "array",
    "assert_op",
    "build_table",
    "case_from_text",
    "check",
    "check_op",
    "compare",
    "diff_runs",
    "get_case",
    "get_path",
    "list_cases",
    "list_defects",
    "list_paths",
    "load_case_file",
    "load_cases",
    "load_defect_file",
    "load_run",
    "merge_runs",
    "parse",
    "read_table",
    "register_case",
    "register_defect",
    "register_function",
    "register_path",
    "regress",
    "scalar",
    "strategies",
    "ulp_error",
    "unregister_function",
    "write_table",
]
