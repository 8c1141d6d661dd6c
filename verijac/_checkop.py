"""Validate a custom op (a torch function, an autograd.Function, a torch.library op) against a case.

`check_op` runs the whole path catalogue, the ``contract`` family included, on a function the
user wrote, with the exact derivatives of a `verijac.Case` as the reference. It differs from
`verijac.check` in three ways: the function under test is ``op`` rather than the case's
implementation; capabilities the user declares ``require``\\ d turn "unsupported" into
failures; and an op with no autograd formula at all is reported as such, once per path,
instead of as a crash.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._errors import UsageError

if TYPE_CHECKING:
    from ._case import Case
    from ._report import Report
    from ._tolerances import PathTolerances

#: Names accepted in ``require=`` → the capability (`verijac.paths.CAPABILITIES`) they mean.
REQUIRE_ALIASES: dict[str, str] = {
    "forward_ad": "forward_ad",
    "forward-ad": "forward_ad",
    "forward": "forward_ad",
    "vmap": "vmap",
    "double_backward": "double_backward",
    "double-backward": "double_backward",
    "compile": "compile",
}

#: What torch says when an op has no autograd formula (torch.library ops without
#: ``register_autograd``, operators without an Autograd kernel).
NO_AUTOGRAD_PATTERNS = (
    r"no autograd formula was registered",
    r"autograd kernel was not registered",
)

#: The reason every derivative path gives for an op without an autograd formula.
NO_AUTOGRAD_REASON = "no autograd formula registered for this op"


def normalise_require(require: str | Iterable[str]) -> frozenset[str]:
    """Capabilities from ``require=``: a name or several, aliases resolved.

    Raises:
        UsageError: a name is not a known capability or alias.
    """
    items = [require] if isinstance(require, str) else list(require)
    out = set()
    for item in items:
        key = item.strip().lower() if isinstance(item, str) else item
        if key not in REQUIRE_ALIASES:
            raise UsageError(
                f"require must name capabilities from {sorted(set(REQUIRE_ALIASES.values()))} "
                f"(aliases {sorted(k for k in REQUIRE_ALIASES if k not in REQUIRE_ALIASES.values())}), "
                f"got {item!r}; e.g. require=('forward_ad', 'double_backward')"
            )
        out.add(REQUIRE_ALIASES[key])
    return frozenset(out)


def _resolve_case(case: Any) -> Case:
    from ._case import Case
    from ._registry import get_case

    if isinstance(case, Case):
        return case
    if isinstance(case, str):
        return get_case(case)  # UnknownCaseError with close names
    raise UsageError(
        f"case must be a verijac.Case or the name of a registered case, got case={case!r}; "
        "e.g. check_op(my_op, 'seed_tuple_io') or check_op(my_op, verijac.Case(...))"
    )


def op_spec(op: Callable[..., Any]) -> str | None:
    """``"package.module:Attr"`` that imports back to ``op``, or ``None`` (a lambda, a local).

    ``Attr`` may be dotted, e.g. ``"mymod:MyFunction.apply"`` for an autograd.Function.
    """
    owner = getattr(op, "__self__", None)  # Function.apply is a bound classmethod
    target = owner if isinstance(owner, type) else op
    suffix = ".apply" if target is owner and getattr(op, "__name__", "") == "apply" else ""
    inner = getattr(target, "_init_fn", None)  # torch.library.custom_op keeps the function
    module_name = getattr(target, "__module__", None)
    if inner is not None:
        module_name = getattr(inner, "__module__", module_name)
    if not isinstance(module_name, str) or module_name.startswith("torch."):
        return None
    try:
        module = importlib.import_module(module_name)
    except Exception:
        return None
    qualname = getattr(target, "__qualname__", None) or getattr(inner, "__qualname__", None)
    if isinstance(qualname, str) and "<" not in qualname:
        found: Any = module
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is target:
            return f"{module_name}:{qualname}{suffix}"
    for name, value in vars(module).items():
        if value is target:
            return f"{module_name}:{name}{suffix}"
    return None


def _reproduce_prefix(
    op: Callable[..., Any], require: frozenset[str], case: Case, spec: str | None = None
) -> str:
    import shlex

    from ._registry import case_source

    spec = spec or op_spec(op) or "MODULE:ATTR"
    parts = ["verijac", "check-op", spec]
    source = case_source(case.name)
    if os.path.isfile(source):  # a case from a cases directory: the command must load it too
        parts += ["--cases-dir", os.path.dirname(os.path.abspath(source))]
    for r in sorted(require):
        parts += ["--require", r]
    return shlex.join(parts)


# -- the function the paths call ------------------------------------------------------------
def _needs_autograd(args: tuple[Any, ...]) -> bool:
    """Whether ``op(*args)`` would record autograd (reverse or forward mode, or torch.func)."""
    import torch

    if not any(isinstance(a, torch.Tensor) for a in args):
        return False
    from torch._C import _functorch

    for a in args:
        if not isinstance(a, torch.Tensor):
            continue
        if torch.is_grad_enabled() and a.requires_grad:
            return True
        if _functorch.is_gradtrackingtensor(a):
            return True
        try:
            from torch.autograd.forward_ad import unpack_dual

            if unpack_dual(a).tangent is not None:
                return True
        except RuntimeError:
            pass
    return False


def _without_autograd(op: Callable[..., Any], reason: str) -> Callable[..., Any]:
    """``op`` for value checks; every derivative through it raises `Unsupported` with ``reason``."""
    from .paths._base import Unsupported

    def call(*args: Any) -> Any:
        if _needs_autograd(args):
            raise Unsupported(reason)
        try:
            return op(*args)
        except (RuntimeError, NotImplementedError) as exc:
            # Inside a transform torch fails before backward, with a message about
            # setup_context that does not name the real cause.
            raise Unsupported(f"{reason} (torch: {str(exc).strip()})") from exc

    return call


#: Why forward mode is unsupported for a torch.library.custom_op: torch has no way to register
#: a forward-mode formula for one, and (torch 2.x) gives a silent zero tangent instead of an error.
CUSTOM_OP_FORWARD_REASON = (
    "torch.library.custom_op ops have no forward-mode AD formula (register_autograd covers "
    "reverse mode only); torch returns no tangent instead of raising"
)


def _has_tangent(args: tuple[Any, ...]) -> bool:
    import torch
    from torch.autograd.forward_ad import unpack_dual

    return any(isinstance(a, torch.Tensor) and unpack_dual(a).tangent is not None for a in args)


def _under_test(op: Callable[..., Any], case: Case, no_autograd: str | None) -> Callable[..., Any]:
    """The function the paths call: ``op``, its outputs checked against the case's shapes."""
    from .paths._base import Unsupported

    base = _without_autograd(op, no_autograd) if no_autograd else op
    custom_op = not no_autograd and hasattr(op, "_opoverload") and hasattr(op, "_init_fn")

    def func(*args: Any) -> Any:
        if custom_op and _has_tangent(args):
            raise Unsupported(CUSTOM_OP_FORWARD_REASON)
        out = base(*args)
        _check_outputs(out, args, case)
        return out

    func.__name__ = getattr(op, "__name__", type(op).__name__)
    func.__qualname__ = getattr(op, "__qualname__", func.__name__)
    func.__doc__ = getattr(op, "__doc__", None)
    func.__wrapped__ = op  # type: ignore[attr-defined]
    return func


def _check_outputs(out: Any, args: tuple[Any, ...], case: Case) -> None:
    """What the op returned must be what the case describes: a tensor ``(*batch,
    *output_shape)`` per output (a tuple exactly when the case's outputs are a tuple).

    Raises:
        ShapeError: another type, count or shape, in one line naming what was expected.
    """
    import torch

    from ._errors import ShapeError

    batch: tuple[int, ...] = ()
    if args and isinstance(args[0], torch.Tensor):
        lead = args[0].dim() - len(case.variables[0].shape)
        batch = tuple(args[0].shape[: max(lead, 0)])
    outs = out if case.tuple_outputs and isinstance(out, (tuple, list)) else (out,)
    if case.tuple_outputs and not isinstance(out, (tuple, list)):
        raise ShapeError(f"op must return a tuple of {len(case.outputs)} tensors, got {_kind(out)}")
    if len(outs) != len(case.outputs):
        raise ShapeError(f"op must return {len(case.outputs)} outputs, got {len(outs)}")
    for k, (o, spec) in enumerate(zip(outs, case.outputs, strict=True)):
        want = (*batch, *spec.shape)
        label = f"output {k}" if case.tuple_outputs else "op"
        if not isinstance(o, torch.Tensor):
            raise ShapeError(f"{label} must return a tensor of shape {want}, got {_kind(o)}")
        if tuple(o.shape) != want:
            raise ShapeError(
                f"{label} must return a tensor of shape {want} (batch {batch} + the case's "
                f"output shape {tuple(spec.shape)}), got shape {tuple(o.shape)}"
            )


def _kind(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"{type(value).__module__}.{type(value).__name__}" if value is not None else "None"


def _probe_inputs(case: Case, device: str, *, pointwise: bool) -> tuple[Any, ...]:
    import torch

    from ._validate import probe_points

    point = probe_points(case, 1)[0]
    lead = (1,) if pointwise else ()
    return tuple(
        torch.tensor(
            [float(point[s]) for s in v.symbols], dtype=torch.float64, device=device
        ).reshape(*lead, *v.shape)
        for v in case.variables
    )


def _accepts(op: Callable[..., Any], n_args: int) -> bool:
    """Whether ``op``'s signature takes ``n_args`` positional arguments (False if unknown)."""
    import inspect

    try:
        inspect.signature(op).bind(*range(n_args))
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): cannot tell
        return False
    return True


def _probe(
    op: Callable[..., Any],
    case: Case,
    device: str,
    *,
    pointwise: bool,
    seconds: float | None = None,
) -> str | None:
    """Call ``op`` once at a point of the case: usage errors raise, a missing autograd formula
    is returned as the reason the derivative paths will give.

    Raises:
        UsageError: ``op`` does not accept one tensor per case input, or returns a different
            number of outputs than the case describes.
    """
    import torch

    from .paths._base import Unsupported

    names = ", ".join(case.input_names)
    if getattr(op, "_backward_fn", "absent") is None and hasattr(op, "_opoverload"):
        torch_says = (
            f"torch.library.custom_op {getattr(op, '_qualname', op)!r} has no register_autograd"
        )
        return f"{NO_AUTOGRAD_REASON}: {torch_says}; add one with op.register_autograd(backward, setup_context=...)"
    try:
        inputs = tuple(
            x.requires_grad_(True) for x in _probe_inputs(case, device, pointwise=pointwise)
        )
    except Exception:  # an empty domain is the runner's to report
        return None
    from ._interrupt import TimeLimitExceeded, time_limit

    try:
        with time_limit(seconds, "op"):
            out = op(*inputs)
    except TimeLimitExceeded:
        return None  # the paths report the hang, each within its share of the budget
    except TypeError as exc:
        if _accepts(op, len(inputs)):
            return None  # a TypeError inside the op itself: the paths report it as an error
        raise UsageError(
            f"calling op with the case's inputs ({names}: one tensor each, batch first) raised "
            f"TypeError: {exc}; op must take exactly one tensor per input of case {case.name!r}, "
            "in that order"
        ) from None
    except (Unsupported, Exception, SystemExit):
        return None  # the paths report it, on each device and dtype
    outs = out if isinstance(out, (tuple, list)) else (out,)
    want = len(case.outputs) if case.tuple_outputs else 1
    if case.tuple_outputs != isinstance(out, (tuple, list)) or len(outs) != want:
        got = (
            f"a tuple of {len(outs)}"
            if isinstance(out, (tuple, list))
            else f"one {type(out).__name__}"
        )
        raise UsageError(
            f"op returned {got}; case {case.name!r} describes "
            + (f"a tuple of {want} outputs" if case.tuple_outputs else "one tensor")
            + " (return a tuple exactly when the case's outputs are a tuple)"
        )
    if not all(isinstance(o, torch.Tensor) for o in outs):
        return None  # the paths report what the op returned instead of tensors
    try:
        grad_outputs = [
            torch.ones_like(o) for o in outs if isinstance(o, torch.Tensor) and o.requires_grad
        ]
        if grad_outputs:
            torch.autograd.grad(
                [o for o in outs if isinstance(o, torch.Tensor) and o.requires_grad],
                inputs,
                grad_outputs,
                allow_unused=True,
            )
    except (RuntimeError, NotImplementedError) as exc:
        msg = str(exc).strip()
        if any(re.search(p, msg) for p in NO_AUTOGRAD_PATTERNS):
            return f"{NO_AUTOGRAD_REASON}: torch says: {msg}"
    except Exception:
        pass
    return None


def _probe_device(devices: Any) -> str:
    from ._resolve import resolve_devices

    for name, skip in resolve_devices(devices):
        if not skip and not name.startswith("mps"):
            return name
    return "cpu"


# -- public API -------------------------------------------------------------------------------
def check_op(
    op: Callable[..., Any],
    case: Case | str,
    *,
    paths: Any = None,
    devices: Any = None,
    dtypes: Any = None,
    seed: int | None = None,
    max_examples: int | None = None,
    batch_size: int | None = None,
    require: str | Iterable[str] = (),
    pointwise: bool = True,
    time_budget: float | None = None,
    profile: str | None = None,
    on_record: Callable[[Any], Any] | None = None,
    tolerances: PathTolerances | None = None,
    tf32: bool = False,
    reference_digits: int | None = None,
    baseline: Report | str | os.PathLike[str] | None = None,
    reproduce_as: str | None = None,
) -> Report:
    """Check a custom op's derivatives, and its autograd contract, against a case's exact math.

    Args:
        op: the op under test. It is called with one tensor per case input, in the case's
            input order, each shaped ``(N, *input_shape)`` (batch first) by the batched paths
            and ``input_shape`` (one point, no batch dimension) by the per-point paths
            (``functional.*``, ``func.jacrev``/``jacfwd``/``grad``) and inside ``vmap``
            (docs/custom-ops.md lists them); it returns what the case's outputs describe: a
            tensor ``(*batch, *output_shape)``, or a tuple of them.
            A plain torch function, an ``autograd.Function``'s ``apply``, a
            ``torch.library.custom_op`` — anything callable.
        case: a `verijac.Case`, or the name of a registered case.
        paths: ``None`` (every path that is not opt-in, the ``contract`` family included),
            names, globs or family names, as in `verijac.check`.
        devices / dtypes / seed / max_examples / batch_size / time_budget / profile /
            on_record / tolerances / tf32 / reference_digits: as in `verijac.check`.
        require: capabilities the op must have: ``"forward_ad"`` (alias ``"forward"``),
            ``"vmap"``, ``"double_backward"`` (alias ``"double-backward"``), ``"compile"``. A
            path that relies on a required capability the op lacks is a mismatch instead of
            unsupported. A failure that a known torch defect explains (for example
            forward-over-forward through an ``autograd.Function``'s ``jvp``, see
            docs/torch-defects.md) is ``xfail``, unless the path uses a required capability.
        baseline: a run file or `Report`: failures it already had are ``known`` (see
            `verijac.check`).
        reproduce_as: the ``MODULE:ATTR`` reproduction lines name (default: found from
            ``op``; the ``verijac check-op`` command passes what the user typed).
        pointwise: ``False`` when ``op`` cannot take a batch (it then gets one point at a
            time, without the batch dimension).

    Returns:
        The same `Report` as `verijac.check`: ``report.passed`` is False on any mismatch or
        error. A missing capability that is not required is ``unsupported`` (torch's message
        is the reason), and does not fail the check; an op with no autograd formula at all
        makes every derivative path ``unsupported`` with the reason
        ``"no autograd formula registered for this op: …"`` (see docs/custom-ops.md).

    Raises:
        UsageError: ``op`` is not callable, does not take one tensor per input, returns a
            different number of outputs than the case describes, or an option is invalid.
        UnknownCaseError: ``case`` names no registered case.
    """
    from ._runner import run

    if not callable(op):
        raise UsageError(
            f"op must be callable (a function, an autograd.Function's .apply, a torch.library "
            f"op), got op={op!r} of type {type(op).__name__}"
        )
    the_case = _resolve_case(case)
    req = normalise_require(require)
    no_autograd = _probe(
        op, the_case, _probe_device(devices), pointwise=pointwise, seconds=time_budget
    )
    return run(
        [the_case],
        func_for=lambda _c: _under_test(op, the_case, no_autograd),
        pointwise=pointwise,
        require=req,
        command="check-op",
        reproduce_prefix=_reproduce_prefix(op, req, the_case, reproduce_as),
        paths=paths,
        devices=devices,
        dtypes=dtypes,
        seed=seed,
        max_examples=max_examples,
        batch_size=batch_size,
        time_budget=time_budget,
        profile=profile,
        on_record=on_record,
        tf32=tf32,
        tolerances=tolerances,
        reference_digits=reference_digits,
        baseline=baseline,
    )


def assert_op(
    op: Callable[..., Any],
    case: Case | str,
    **options: Any,
) -> Report:
    """`check_op`, raising an `AssertionError` unless the op passes; for use in pytest tests.

    Also fails when nothing was verified: every derivative path unsupported or skipped (an
    op with no autograd formula, say), so that a test cannot pass vacuously.

    Args:
        op, case, options: as `check_op`.

    Returns:
        The passing `Report`.

    Raises:
        AssertionError: the report has a mismatch or an error (the message is the summary and
            every failure's message, each with its reproduction command), or no derivative
            path passed.
    """
    __tracebackhide__ = True
    report = check_op(op, case, **options)
    if not report.passed:
        raise AssertionError(str(report))
    verified = [r for r in report.records if r.status == "pass" and r.family != "contract"]
    if not verified:
        reasons = sorted(
            {r.reason for r in report.records if r.status in ("unsupported", "skipped")}
        )
        raise AssertionError(
            f"{report.summary()}\n\nnothing was verified: no derivative path passed; "
            + "; ".join(reasons[:3])
        )
    return report


__all__ = [
    "NO_AUTOGRAD_REASON",
    "REQUIRE_ALIASES",
    "assert_op",
    "check_op",
    "normalise_require",
    "op_spec",
]
