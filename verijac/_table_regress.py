"""``verijac regress``: every selected path at a table's points, against the table's values.

The reference is the table, not SymPy: a Jacobian, gradient or Hessian entry is compared
with the table's value correctly rounded to the path's dtype (float64 and float32 are
columns of the table; float16 and bfloat16 are rounded once from the exact value or the
decimal), so the ULP error of an entry is measured against the best answer that dtype can
give. Products with tangents and cotangents (JVP, VJP, HVP, …) are formed in float64 from
the table's float64 values. Each case × path × device × dtype becomes one `Record`, allowed
the errors of the tolerance model (`verijac._tolerances`), in a `Report` that ``verijac
diff`` compares with another run.

The function under test is the registered case of the same name when its definition has
the table's hash (its ``torch_impl`` included), else the case rebuilt from the table's
expressions with the safe parser.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections.abc import Callable, Mapping
from fractions import Fraction
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ._errors import CaseError, TableError, UnknownCaseError
from ._report import Record, Report
from ._table_numbers import FORMATS, round_binary

if TYPE_CHECKING:
    from ._case import Case
    from ._tables import LoadedCase, LoadedEntry, LoadedTable
    from .paths._base import AutogradPath, Problem


def case_for(
    loaded: LoadedCase, where: str, given: Mapping[str, Case] | None = None
) -> tuple[Case, str]:
    """The case whose function is checked: the one ``given`` under its name, else the
    registered one if it matches the table's hash, else one rebuilt from the table's
    expressions; and which of these it is.

    Raises:
        TableError: a given case does not match the table's definition, or the definition
            does not make a valid case.
    """
    from ._registry import get_case
    from ._tables import case_definition, definition_hash

    if given is not None and loaded.name in given:
        case = given[loaded.name]
        if definition_hash(case.name, case_definition(case)) != loaded.hash:
            raise TableError(
                f"{where}: case {loaded.name!r}: the given case's expressions, inputs or "
                "domains differ from the table's (their hashes differ); give the case the "
                "table was made from"
            )
        return case, "given case"
    try:
        registered = get_case(loaded.name)
    except UnknownCaseError:
        registered = None
    if (
        registered is not None
        and definition_hash(registered.name, case_definition(registered)) == loaded.hash
    ):
        return registered, "registered case"
    try:
        return _rebuild(loaded), "case rebuilt from the table's expressions"
    except CaseError as exc:
        raise TableError(f"{where}: case {loaded.name!r}: not a valid case: {exc}") from None


def _rebuild(loaded: LoadedCase) -> Case:
    import sympy

    from ._case import Case, array, scalar
    from ._domain import Interval
    from ._parse import parse

    d = loaded.definition
    inputs: dict[str, Any] = {}
    domain: dict[str, Any] = {}
    for v in d["inputs"]:
        inputs[v["name"]] = array(v["name"], v["shape"]) if v["shape"] else scalar(v["name"])
        dom = v["domain"]
        domain[v["name"]] = Interval(
            float(dom["lo"]),
            float(dom["hi"]),
            left_open=bool(dom["left_open"]),
            right_open=bool(dom["right_open"]),
            exclude=tuple(float(p) for p in dom["exclude"]),
        )
    outs = []
    for o in d["outputs"]:
        exprs = [parse(e, symbols=inputs) for e in o["exprs"]]
        outs.append(sympy.Array(exprs, tuple(o["shape"])) if o["shape"] else exprs[0])
    outputs = tuple(outs) if d.get("tuple_outputs") or len(outs) > 1 else outs[0]
    return Case(loaded.name, inputs=inputs, outputs=outputs, domain=domain)


def _rounded(entry: LoadedEntry, dtype: str) -> float:
    """The entry correctly rounded to ``dtype``."""
    if dtype == "float64":
        return entry.float64
    if dtype == "float32":
        return entry.float32
    return round_binary(entry.exact if entry.exact is not None else entry.decimal, FORMATS[dtype])


def _coordinate(c: Any, dtype: str) -> float:
    if not isinstance(c, Fraction):
        import sympy

        approx = sympy.Rational(sympy.sympify(c).evalf(40))
        c = Fraction(int(approx.p), int(approx.q))
    return round_binary(c, FORMATS[dtype])


def regress(
    table: LoadedTable,
    *,
    paths: Any = None,
    devices: Any = None,
    dtypes: Any = None,
    cases: Mapping[str, Case] | None = None,
    on_record: Callable[[Record], Any] | None = None,
) -> Report:
    """Check ``paths`` × ``devices`` × ``dtypes`` at every point of ``table``.

    Args:
        table: a table read by `verijac._tables.read_table`.
        paths / devices / dtypes: as `verijac.check` (defaults: every path that is not
            opt-in, every available device, float64 and float32).
        cases: case name → the `Case` whose function to check (its ``torch_impl``, e.g. a
            custom op), instead of the registered case or one rebuilt from the table.
        on_record: called with each record as it is finished.

    Returns:
        A `Report` with one record per case × path × device × dtype; its settings name the
        table and its hash.
    """
    import torch

    from ._resolve import resolve_devices, resolve_dtypes, resolve_paths
    from ._runner import _tf32

    path_list = resolve_paths(paths)
    device_list = resolve_devices(devices)
    dtype_list = resolve_dtypes(dtypes)
    seed = int(table.metadata["seed"])
    origins: dict[str, str] = {}
    report = Report(
        seed=seed,
        settings={
            "command": "regress",
            "table": table.path,
            "table_hash": table.file_hash,
            "table_metadata": dict(table.metadata),
            "torch": torch.__version__,
            "devices": [d for d, _ in device_list],
            "dtypes": dtype_list,
            "paths": [p.name for p in path_list],
            "reference": f"table {table.file_hash}",
            "functions": origins,
        },
    )
    from ._runfile import case_hash, environment

    report.environment = environment([d for d, _ in device_list])
    with _tf32(False):
        for loaded in table.cases:
            case, origins[loaded.name] = case_for(loaded, table.path, cases)
            report.cases[case.name] = case_hash(case)
            for device, skip in device_list:
                for dtype in dtype_list:
                    why = skip
                    if not why and device.startswith("mps") and dtype == "float64":
                        why = "dtype 'float64' skipped on mps: MPS has no float64"
                    group = _Group(table, loaded, case, origins[loaded.name], device, dtype)
                    for path in path_list:
                        record = group.record(path, why)
                        report.records.append(record)
                        if on_record is not None:
                            on_record(record)
    return report


class _Group:
    """One case × device × dtype: the table's points as tensors and the expected values."""

    def __init__(
        self,
        table: LoadedTable,
        loaded: LoadedCase,
        case: Case,
        origin: str,
        device: str,
        dtype: str,
    ) -> None:
        self.table, self.loaded, self.case, self.origin = table, loaded, case, origin
        self.device, self.dtype = device, dtype
        self.seed = int(table.metadata["seed"])
        self._problem: Problem | None = None

    @property
    def problem(self) -> Problem:
        """The points rounded to the dtype, with seeded tangents and cotangents."""
        if self._problem is None:
            import torch

            from ._reference import make_problem

            tdtype = getattr(torch, self.dtype)
            inputs = []
            for v in self.case.variables:
                rows = [
                    [_coordinate(c, self.dtype) for c in p.coords[v.name]]
                    for p in self.loaded.points
                ]
                t = torch.tensor(rows, dtype=torch.float64).reshape(len(rows), *v.shape)
                inputs.append(t.to(device=self.device, dtype=tdtype))
            digest = hashlib.sha256(f"{self.seed}/{self.case.name}".encode()).digest()
            gen = torch.Generator().manual_seed(int.from_bytes(digest[:7], "little"))
            self._problem = make_problem(self.case, inputs, generator=gen)
        return self._problem

    def expected(self, name: str, dtype: str) -> Any:
        """The table's quantity ``name`` (J or H), rounded to ``dtype``, as float64."""
        import torch

        shape = self.loaded.quantities[name]
        rows = [[_rounded(e, dtype) for e in v[name]] for v in self.loaded.values]
        out = torch.tensor(rows, dtype=torch.float64).reshape(len(rows), *shape)
        return out.to(self.device)

    def record(self, path: AutogradPath, skip: str) -> Record:
        from ._evaluate import _exception_outcome, _run_path, _unmet
        from ._records import known_failure
        from ._state import _PathState
        from ._tolerances import COMPUTES_ORDER, resolve_tolerance

        tolerance = resolve_tolerance(
            self.dtype,
            order=COMPUTES_ORDER[path.computes],
            case_tolerances=self.case.tolerances,
            path=path,
        )
        base: dict[str, Any] = {
            "case": self.case.name,
            "path": path.name,
            "family": path.family,
            "computes": path.computes,
            "device": self.device,
            "dtype": self.dtype,
            "seed": self.seed,
            "rtol": tolerance.rtol,
            "atol": tolerance.atol,
        }
        n = len(self.loaded.points)
        if skip:
            return Record(status="skipped", points=0, reason=skip, **base)
        reason = _unmet(path, self.case, True)
        if not reason and path.computes == "behaviour":
            reason = f"path {path.name!r} checks a behaviour, not values the table holds"
        if not reason and COMPUTES_ORDER[path.computes] == 2 and "H" not in self.loaded.quantities:
            reason = (
                "the table has no Hessian for this case (make it with `verijac table --hessian`)"
            )
        if not reason and n == 0:
            reason = "the table has no points for this case"
        if reason:
            return Record(status="unsupported", points=0, reason=reason, **base)
        state = _PathState(path, tolerance)
        started = time.perf_counter()
        try:
            out = _run_path(state, SimpleNamespace(problem=self.problem))  # type: ignore[arg-type]
            if out is not None and out[1] is not None:
                return Record(
                    status="unsupported",
                    points=0,
                    reason=f"path {path.name!r} computes at points of its own choosing, where "
                    "the table has no values",
                    **base,
                )
            cmp = self._compare(path, tolerance, out[0] if out is not None else None)
        except Exception as exc:
            status, why = _exception_outcome(path, exc, frozenset())
            return Record(status=status, points=n, reason=why, **base)
        elapsed = time.perf_counter() - started
        row = cmp.index[0] if cmp.index else 0
        point = self.loaded.points[row]
        entry = _entry_label(path.computes, cmp.index)
        status = "pass" if cmp.ok else "mismatch"
        reason = (
            f"worst entry {entry} at table point {point.id!r}; function under test: the "
            f"{self.origin}"
        )
        key, known = known_failure(self.case, path, self.dtype)
        if known:
            where = f"case {self.case.name!r}, known_failures[{key!r}]"
            if status == "mismatch":
                status, reason = "xfail", f"expected failure ({where}): {known} Observed: {reason}"
            else:
                status, reason = "xpass", f"known failure did not show ({where}): {known}"
        return Record(
            status=status,
            points=n,
            max_abs=cmp.max_abs,
            max_rel=cmp.max_rel,
            max_ulp=cmp.max_ulp,
            reason=reason,
            point=self._point(row),
            index=list(cmp.index),
            expected=cmp.expected,
            actual=cmp.actual,
            allowed=cmp.allowed,
            duration=elapsed,
            warnings=sorted(state.warnings),
            reproduce=""
            if status == "pass"
            else " ".join(
                [
                    "verijac regress",
                    shlex.quote(self.table.path),
                    f"--path {shlex.quote(path.name)}",
                    f"--device {shlex.quote(self.device)}",
                    f"--dtype {self.dtype}",
                ]
            ),
            **base,
        )

    def _compare(self, path: AutogradPath, tolerance: Any, result: Any) -> Any:
        import torch

        from ._compare import bound, weights
        from ._errors import InternalError
        from ._kinds import get_kind
        from ._reference import expected

        problem = self.problem
        kind = get_kind(path.computes)
        second = kind.second_order
        if kind.plain:
            # Derivative entries themselves: compared entry by entry with the table's values
            # rounded to the path's dtype.
            if kind.exact is None:
                raise InternalError(f"result kind {kind.name!r} has no exact value")
            table = self.expected("H" if second else "J", self.dtype)
            exp = kind.exact(None if second else table, table if second else None, None, None)
            scale = weight = None
        else:
            jac = self.expected("J", "float64")
            hess = self.expected("H", "float64") if second else None
            exp = expected(path.computes, problem, jac, hess)
            absolute = SimpleNamespace(
                tangents=problem.tangents.abs(), cotangents=problem.cotangents.abs()
            )
            scale = expected(
                path.computes,
                absolute,  # type: ignore[arg-type]
                jac.abs(),
                None if hess is None else hess.abs(),
            )
            weight = weights(path.computes, problem, exp.device)
        check = bound(
            exp, dtype=getattr(torch, self.dtype), tolerance=tolerance, scale=scale, weight=weight
        )
        return check.check(result, locate=True)

    def _point(self, row: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for v, x in zip(self.case.variables, self.problem.inputs, strict=True):
            out[v.name] = x[row].detach().cpu().to(dtype=x.dtype).double().tolist()
        return out


def _entry_label(computes: str, index: list[int]) -> str:
    """``J[1,2]`` (a Jacobian entry, point row dropped) or ``jvp[1]``."""
    from ._kinds import BY_NAME

    kind = BY_NAME.get(computes)
    name = kind.short if kind is not None else computes
    return f"{name}[{','.join(map(str, index[1:]))}]"


__all__ = ["case_for", "regress"]
