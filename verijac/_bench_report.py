"""``verijac bench`` output: ranked rich tables, JSON, and PNG plots (matplotlib)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._bench import CORRECT, BenchReport, BenchResult
from ._errors import UsageError

#: Table style per status (rich markup).
STYLES = {
    "pass": "green",
    "mismatch": "bold red",
    "error": "red",
    "xfail": "yellow",
    "unsupported": "dim",
    "skipped": "dim",
}

Group = tuple[str, str, str, str]


def fmt_time(seconds: float | None) -> str:
    """``1.23 µs``: three significant digits in the unit that suits."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_bytes(n: int | None) -> str:
    """``12.3 MiB``; ``-`` when not measured."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.3g} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.3g} GiB"  # pragma: no cover


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}×"


def groups(report: BenchReport) -> dict[Group, list[BenchResult]]:
    """Results per (case, mode, device, dtype), in run order."""
    out: dict[Group, list[BenchResult]] = {}
    for r in report.results:
        out.setdefault((r.case, r.mode, r.device, r.dtype), []).append(r)
    return out


def ranked(results: Sequence[BenchResult], points: int) -> list[BenchResult]:
    """The results at ``points``: timed ones fastest first, then the others by name."""
    at = [r for r in results if r.points == points]
    timed = sorted((r for r in at if r.per_point is not None), key=lambda r: r.per_point or 0.0)
    return timed + sorted((r for r in at if r.per_point is None), key=lambda r: r.method)


def headline_size(results: Sequence[BenchResult]) -> int:
    """The batch size a group is ranked at: the largest one."""
    return max(r.points for r in results)


def fastest(results: Sequence[BenchResult], points: int) -> BenchResult | None:
    """The fastest correct result at ``points`` (``None`` when none passed)."""
    ok = [r for r in ranked(results, points) if r.status in CORRECT and r.per_point is not None]
    return ok[0] if ok else None


def _floor_text(report: BenchReport, key: tuple[str, str, str, str, int]) -> str:
    parts = []
    if key in report.floors:
        parts.append(f"{fmt_time(report.floors[key])}/point (torch, no grad)")
    jax_floor = report.jax_floors.get(key)
    if jax_floor is not None and math.isfinite(jax_floor):
        parts.append(f"{fmt_time(jax_floor)}/point (jax.jit)")
    return "one evaluation of f: " + ("; ".join(parts) if parts else "-")


def print_report(report: BenchReport, out: IO[str], *, width: int | None = None) -> None:
    """The ranked table per group at its largest batch size, the time per point at every
    batch size, and the reasons of every failure."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=width, highlight=False, soft_wrap=False)
    for (case, mode, device, dtype), results in groups(report).items():
        size = headline_size(results)
        key = (case, mode, device, dtype, size)
        table = Table(
            title=f"{case} · {mode} · {device} · {dtype} · ranked at {size:,} points",
            caption=_floor_text(report, key),
            title_justify="left",
            caption_justify="left",
        )
        for name, justify in (
            ("#", "right"),
            ("path", "left"),
            ("status", "left"),
            ("time/point", "right"),
            ("IQR", "right"),
            ("× fastest", "right"),
            ("× f", "right"),
            ("theory (f)", "right"),
            ("peak mem", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        rank = 0
        for r in ranked(results, size):
            style = STYLES.get(r.status, "")
            spread = "-"
            if r.seconds and r.q25 is not None and r.q75 is not None:
                spread = f"±{50 * (r.q75 - r.q25) / r.seconds:.0f}%"
            if r.per_point is not None:
                rank += 1
            name = r.method
            if 0 < r.timed_points < r.points:
                name += f" (on {r.timed_points})"
            table.add_row(
                str(rank) if r.per_point is not None else "",
                name,
                f"[{style}]{r.status}[/]" if style else r.status,
                fmt_time(r.per_point),
                spread,
                _ratio(r.vs_fastest),
                _ratio(r.vs_f),
                "-" if r.theory is None else f"{r.theory:g}",
                fmt_bytes(r.peak_bytes),
            )
        console.print(table)
        sizes = sorted({r.points for r in results})
        if len(sizes) > 1:
            grid = Table(title="time per point by batch size", title_justify="left")
            grid.add_column("path")
            for s in sizes:
                grid.add_column(f"{s:,}", justify="right")
            by_name: dict[str, dict[int, BenchResult]] = {}
            for r in results:
                by_name.setdefault(r.method, {})[r.points] = r
            for r in ranked(results, size):
                if r.per_point is None and all(
                    x.per_point is None for x in by_name[r.method].values()
                ):
                    continue
                cells = []
                for s in sizes:
                    x = by_name[r.method].get(s)
                    mark = (
                        ""
                        if x is None or x.status in CORRECT
                        else f" [{STYLES.get(x.status, '')}]{x.status}[/]"
                    )
                    cells.append(fmt_time(x.per_point if x else None) + mark)
                grid.add_row(r.method, *cells)
            console.print(grid)
        problems = [r for r in results if r.status not in ("pass", "unsupported")]
        seen: set[tuple[str, str]] = set()
        for r in problems:
            if (r.method, r.reason) in seen:
                continue
            seen.add((r.method, r.reason))
            style = STYLES.get(r.status, "")
            console.print(
                f"  [{style}]{r.status}[/] {r.method} at {r.points:,} points: {r.reason}",
                highlight=False,
            )
        unsupported = sorted({r.method for r in results if r.status == "unsupported"})
        if unsupported:
            console.print(f"  unsupported here: {', '.join(unsupported)} (reasons in --json)")
        console.print()
    for note in report.notes:
        console.print(f"note: {note}")


def summary_line(report: BenchReport, elapsed: float) -> str:
    """``verijac bench: PASSED: 120 results (…) in 41.2s``."""
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in counts.items())
    word = "FAILED" if report.failed else ("PASSED" if report.results else "NOTHING RAN")
    return f"verijac bench: {word}: {len(report.results)} results ({parts or 'none'}) in {elapsed:.1f}s"


def write_json(report: BenchReport, path: str) -> None:
    """Write the report as JSON, atomically.

    Raises:
        UsageError: the file cannot be written.
    """
    from ._report import write_text_atomic

    write_text_atomic(path, json.dumps(report.to_dict(), indent=2, default=str) + "\n")


def check_matplotlib() -> None:
    """Raise unless matplotlib can be imported (before a long run, not after it).

    Raises:
        UsageError: matplotlib is missing; the message says how to install it.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            'the plots need matplotlib, which is not installed: pip install "verijac[plot]" '
            "(or leave out --output-dir)"
        ) from None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "", text.replace(":", ""))


def _series(results: Sequence[BenchResult]) -> Iterator[tuple[str, list[BenchResult]]]:
    by: dict[str, list[BenchResult]] = {}
    for r in results:
        by.setdefault(r.method, []).append(r)
    size = headline_size(results)
    order = [r.method for r in ranked(results, size)]
    for name in order:
        timed = [r for r in by[name] if r.per_point is not None]
        if timed:
            yield name, sorted(timed, key=lambda r: r.points)


def write_plots(report: BenchReport, directory: str) -> list[str]:
    """Per group: time per point against batch size (log–log, one line per path) and a bar
    chart at the largest batch size. Returns the files written.

    Raises:
        UsageError: matplotlib is missing or the directory cannot be written.
    """
    check_matplotlib()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create --output-dir {directory!r}: {exc.strerror or exc}"
        ) from None
    versions = f"torch {report.settings.get('torch', '?')}"
    if report.settings.get("jax_timed"):
        versions += f", jax {report.settings.get('jax', '?')}"
    written = []
    for (case, mode, device, dtype), results in groups(report).items():
        stem = _slug(f"{case}_{mode}_{device}_{dtype}")
        title = f"{case} · {mode} · {device} · {dtype}\n{versions}"
        series = list(_series(results))
        if not series:
            continue
        cmap = plt.get_cmap("tab20")
        fig, ax = plt.subplots(figsize=(10, 6))
        for k, (name, rs) in enumerate(series):
            wrong = any(r.status not in CORRECT for r in rs)
            ax.plot(
                [r.points for r in rs],
                [r.per_point or math.nan for r in rs],
                marker="o",
                markersize=3,
                linestyle="--" if name.startswith("jax.") else "-",
                color=cmap(k % 20),
                label=name + (" (WRONG)" if wrong else ""),
            )
        floors = sorted(
            (k[4], v) for k, v in report.floors.items() if k[:4] == (case, mode, device, dtype)
        )
        if floors:
            ax.plot(*zip(*floors), color="black", linewidth=2, label="one f evaluation (torch)")
        jax_floors = sorted(
            (k[4], v)
            for k, v in report.jax_floors.items()
            if k[:4] == (case, mode, device, dtype) and math.isfinite(v)
        )
        if jax_floors:
            ax.plot(
                *zip(*jax_floors),
                color="black",
                linewidth=2,
                linestyle="--",
                label="one f evaluation (jax.jit)",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch size (points)")
        ax.set_ylabel("time per point (s)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        lines = target / f"{stem}_lines.png"
        _save(fig, lines)
        plt.close(fig)
        written.append(str(lines))

        size = headline_size(results)
        bars = [r for r in ranked(results, size) if r.per_point is not None]
        fig, ax = plt.subplots(figsize=(9, 0.3 * len(bars) + 1.5))
        colors = ["tab:green" if r.status in CORRECT else "tab:red" for r in bars]
        ax.barh([r.method for r in bars], [r.per_point or 0.0 for r in bars], color=colors)
        ax.invert_yaxis()
        ax.set_xscale("log")
        key = (case, mode, device, dtype, size)
        if key in report.floors:
            ax.axvline(report.floors[key], color="black", linestyle=":", label="one f evaluation")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xlabel(f"time per point (s) at {size:,} points; red: wrong or not checked")
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        bar = target / f"{stem}_bars.png"
        _save(fig, bar)
        plt.close(fig)
        written.append(str(bar))
    return written


def _save(fig: Any, path: Path) -> None:
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


__all__ = [
    "check_matplotlib",
    "fastest",
    "fmt_bytes",
    "fmt_time",
    "groups",
    "print_report",
    "ranked",
    "summary_line",
    "write_json",
    "write_plots",
]
