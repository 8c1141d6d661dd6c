"""The ``verijac bench`` sub-command: which way of computing a Jacobian is fastest, checked.

Imports nothing heavy at module level (torch, SymPy, jax, matplotlib and rich load when the
command runs). Exit status: 0 every timed result was right, 1 a result was wrong (mismatch)
or a method raised (error), 2 a usage error.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ._errors import UsageError
from ._options import positive_int, seed

#: The ``--mode`` names (`verijac._bench_methods.MODES` defines them; a test keeps both in step).
MODE_NAMES = ("paths", "range-gradient", "range-jvp", "all")


def batch_sizes(text: str) -> list[int]:
    """``1,10,1k,10k,100000`` → batch sizes (``k`` = 1,000), each >= 1."""
    out = []
    for part in text.split(","):
        item = part.strip().lower().replace("_", "")
        factor = 1
        if item.endswith("k"):
            item, factor = item[:-1], 1000
        try:
            value = int(item) * factor
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated batch sizes >= 1 such as 1,100,10k, got {text!r}"
            )
        out.append(value)
    return out


def nonnegative_int(text: str) -> int:
    """An option value that must be an integer >= 0 (warm-up calls)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_commands(sub: Any) -> None:
    """Add the ``bench`` sub-parser to ``sub`` (an argparse sub-parsers action)."""
    p = sub.add_parser(
        "bench",
        help="time every autograd path (and JAX) for cases, each result checked",
        description="Time every applicable way of computing a case's derivatives over batch "
        "sizes, devices and dtypes, and compare each result once with the exact reference: "
        "a fast path that is wrong is reported as wrong.",
        epilog="Exit status: 0 all timed results right, 1 a result wrong or an error, 2 usage "
        "error. Modes: paths (every first-order catalogue path), range-gradient and range-jvp "
        "(seed 003: the gradient, or J @ v, over a range of input 0 with the others fixed).",
    )
    sel = p.add_argument_group("selection")
    sel.add_argument(
        "--case",
        action="append",
        default=[],
        metavar="NAME",
        help="case name or glob; repeatable; required unless --tag is given",
    )
    sel.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="only cases with this tag"
    )
    sel.add_argument(
        "--cases-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="extra directory of cases (*.py modules defining CASES, *.toml files); repeatable",
    )
    sel.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="PATH",
        help="path name, glob or family; range.* and jax.* name bench's own; repeatable",
    )
    sel.add_argument(
        "--mode",
        action="append",
        default=[],
        choices=MODE_NAMES,
        help="paths, range-gradient, range-jvp or all (default); repeatable",
    )
    sel.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="DEVICE",
        help="cpu, cuda, cuda:1; repeatable; default: cpu and every CUDA device",
    )
    sel.add_argument(
        "--dtype",
        action="append",
        default=[],
        metavar="DTYPE",
        help="float32 (default), float64, float16, bfloat16; repeatable",
    )
    sel.add_argument(
        "--jax",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time JAX beside torch (default: when jax is installed)",
    )
    timing = p.add_argument_group("timing")
    timing.add_argument(
        "--batch-sizes",
        type=batch_sizes,
        metavar="N,N,…",
        help="points per batch (default 1,100,10000; 1k = 1000)",
    )
    timing.add_argument(
        "--repeats", type=positive_int, metavar="N", help="timed samples per method (default 5)"
    )
    timing.add_argument(
        "--warmup", type=nonnegative_int, metavar="N", help="untimed calls first (default 1)"
    )
    timing.add_argument("--seed", type=seed, default=0, help="seed for the points (default 0)")
    timing.add_argument(
        "--no-memory",
        action="store_true",
        help="do not measure peak memory (measured on the warm-up call)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--json", metavar="FILE", help="write every result as JSON")
    out.add_argument(
        "--output-dir", metavar="DIR", help="write PNG plots (needs matplotlib: verijac[plot])"
    )
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark; print, write and return the exit status."""
    from ._bench import DEFAULT_BATCH_SIZES, DEFAULT_REPEATS, DEFAULT_WARMUP
    from ._bench_report import check_matplotlib, print_report, summary_line, write_json
    from ._bench_run import bench
    from ._cli import _load_dirs
    from ._options import select_cases

    if not args.case and not args.tag:
        raise UsageError(
            "choose what to benchmark: --case NAME (e.g. --case seed_batched_gradient) or "
            "--tag TAG; `verijac list` shows the cases"
        )
    if args.output_dir:
        check_matplotlib()
    _load_dirs(args.cases_dir)
    cases = select_cases(args.case, args.tag)
    start = time.perf_counter()
    with _ProgressBar(enabled=not args.no_progress) as progress:
        report = bench(
            cases,
            modes=args.mode or None,
            paths=args.path,
            batch_sizes=args.batch_sizes or DEFAULT_BATCH_SIZES,
            devices=args.device or None,
            dtypes=args.dtype or ("float32",),
            repeats=args.repeats or DEFAULT_REPEATS,
            warmup=DEFAULT_WARMUP if args.warmup is None else args.warmup,
            seed=args.seed,
            jax=args.jax,
            memory=not args.no_memory,
            progress=progress,
        )
    elapsed = time.perf_counter() - start
    s = report.settings
    print(
        f"verijac bench: torch {s['torch']}, jax {s['jax'] if s['jax_timed'] else 'not timed'}, "
        f"{s['cpu_count']} CPU(s), {s['torch_threads']} torch thread(s), load average "
        f"{' '.join(map(str, s['load_average'])) or '?'}" + (f", {s['cuda']}" if s["cuda"] else ""),
        flush=True,
    )
    print_report(report, sys.stdout, width=None if sys.stdout.isatty() else 130)
    if args.json:
        write_json(report, args.json)
        print(f"verijac bench: wrote {args.json}")
    if args.output_dir:
        from ._bench_report import write_plots

        files = write_plots(report, args.output_dir)
        print(f"verijac bench: wrote {len(files)} plot(s) to {args.output_dir}")
    else:
        print("verijac bench: plots: pass --output-dir DIR")
    print(summary_line(report, elapsed), flush=True)
    return 1 if report.failed else 0


class _ProgressBar:
    """A rich progress bar on stderr (none when disabled or stderr is not a terminal)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("bench", total=None)

        def update(done: int, total: int, label: str) -> None:
            self.bar.update(self.task, completed=done, total=total, description=label[:60])

        return update

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


__all__ = ["MODE_NAMES", "add_commands", "batch_sizes"]
