"""Timing and memory of one call, for ``verijac bench``: samples, medians, CUDA synchronised.

Timing repeats a fast call within each sample until the sample lasts `MIN_SAMPLE_S` (the
timer's resolution and scheduling noise), and takes the median and quartiles of the samples.
Memory is the peak above what was in use before the call: ``torch.cuda.max_memory_allocated``
on CUDA, the growth of the peak resident set on the CPU (Linux).
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: A timed sample repeats a fast call until it lasts this long (timer resolution, noise).
MIN_SAMPLE_S = 2e-3
#: The timed samples of one method at one batch size stop after about this long.
MEASURE_BUDGET_S = 0.5


def synchronizer(device: str) -> Callable[[], None]:
    """A call that waits for ``device``'s queued work (``torch.cuda.synchronize``; a no-op
    on the CPU)."""
    import torch

    if device.startswith("cuda"):
        dev = torch.device(device)
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None


def _timed(call: Callable[[], Any], sync: Callable[[], None], number: int) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(number):
        call()
    sync()
    return time.perf_counter() - start


@dataclass
class Timing:
    """Median and quartiles of one call, in seconds, from ``samples`` timed samples."""

    median: float
    q25: float
    q75: float
    samples: int


def measure(
    call: Callable[[], Any],
    *,
    sync: Callable[[], None],
    warmup: int,
    repeats: int,
    estimate: float,
    first_warmup: Callable[[], Any] | None = None,
) -> Timing:
    """Time ``call``: ``warmup`` calls, then ``repeats`` samples of as many calls as last
    `MIN_SAMPLE_S`, fewer samples when they would take more than `MEASURE_BUDGET_S`.

    Args:
        estimate: seconds of one call seen so far (the first call), refined by the warm-up.
        first_warmup: makes the first warm-up call instead of ``call`` (the peak-memory
            probe rides on it, so a slow method is not called once more for it).
    """
    for k in range(warmup):
        if k == 0 and first_warmup is not None:
            sync()
            start = time.perf_counter()
            first_warmup()
            sync()
            estimate = time.perf_counter() - start
        else:
            estimate = _timed(call, sync, 1)
    estimate = max(estimate, 1e-7)
    number = max(1, min(10_000, math.ceil(MIN_SAMPLE_S / estimate)))
    reps = max(1, min(repeats, int(MEASURE_BUDGET_S / (estimate * number))))
    samples = sorted(_timed(call, sync, number) / number for _ in range(reps))
    if len(samples) == 1:
        return Timing(samples[0], samples[0], samples[0], 1)
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return Timing(statistics.median(samples), q[0], q[2], len(samples))


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
        return trim
    except (OSError, AttributeError):
        return None


def _trim() -> None:
    """Give freed heap pages back to the OS (glibc ``malloc_trim``), so that what one call
    allocates shows as resident-set growth instead of reusing pages already resident."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def peak_memory(call: Callable[[], Any], device: str) -> int | None:
    """Peak memory of one ``call`` above what was in use before it, in bytes.

    CUDA: ``torch.cuda.max_memory_allocated`` after resetting the peak. CPU: the growth of
    the process's peak resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``);
    ``None`` where that is not available. The CPU figure is approximate: allocator caching
    and other threads move it.
    """
    import torch

    if device.startswith("cuda"):
        dev = torch.device(device)
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        allocated = torch.cuda.memory_allocated(dev)
        call()
        torch.cuda.synchronize(dev)
        return int(torch.cuda.max_memory_allocated(dev) - allocated)
    _trim()
    base = _status_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return None
    call()
    peak = _status_kb("VmHWM")
    if base is None or peak is None:
        return None
    return max(0, peak - base)


__all__ = ["MEASURE_BUDGET_S", "MIN_SAMPLE_S", "Timing", "measure", "peak_memory", "synchronizer"]
