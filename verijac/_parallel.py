"""Checking groups (case × device × dtype) in several worker processes.

The runner hands `run_groups` its groups in report order and a function that checks one
group; with ``jobs > 1`` forked workers take groups from a queue as they fall free (groups
differ in cost by orders of magnitude, so a static split would leave workers idle) and send
each record back as it is made. Records reach ``emit`` in report order, whatever order the
workers finish in: a parallel run reports exactly what a serial run with the same seed does.

Workers are forked, so cases, the function under test and the options need not be pickled
(a custom op defined in a script works), and each runs torch with one intra-op thread per
worker. Forking is used only where it is safe: on Linux, with CPU devices only (CUDA cannot
be used in a forked child once the parent initialised it); elsewhere the groups run in this
process, as with ``jobs=1``.

A worker that dies (a crash inside torch, the kernel's OOM killer) costs its group: the
records not yet made become ``error`` records naming the signal; the other groups go on.
Ctrl-C stops the workers and the records received so far are reported, as in a serial run.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import UsageError
from ._interrupt import raise_if_interrupted

if TYPE_CHECKING:
    from ._report import Record

#: Seconds the parent waits for a message before it checks the workers are alive.
POLL_SECONDS = 0.5

#: A worker's full garbage collections come at most once per this many collections of the
#: middle generation (Python's default: 10). The heap a worker inherits is frozen (`_work`),
#: but the one it grows (torch's lazily imported modules, each case's SymPy derivatives and
#: generated code) is large too. Measured per worker in a ``ci`` run: nothing frozen, at
#: 10, 3.2 s in 9 full collections; frozen, at 10, 2.4-2.8 s in 23-27 (freezing empties
#: the oldest generation, and Python collects it again once it grows by a quarter); frozen,
#: at 100, 1.1 s in 4. Cyclic garbage old enough to reach the oldest generation lives
#: longer; everything younger is collected as before.
FULL_COLLECTION_EVERY = 100


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: Any) -> int:
    """``jobs`` as a number of worker processes: an int >= 1, or ``"auto"`` / 0 (one per
    available CPU, at most 8).

    Raises:
        UsageError: anything else.
    """
    if jobs in ("auto", 0):
        return min(available_cpus(), 8)
    if isinstance(jobs, str) and jobs.isdigit():
        jobs = int(jobs)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"jobs must be an int >= 1 or 'auto', got {jobs!r}")
    return jobs


#: Modules whose own threads make a forked child deadlock-prone (they warn at fork).
THREADED_MODULES = ("jax", "tensorflow")


def can_fork(devices: Sequence[str]) -> str:
    """Why the groups cannot run in forked workers (``""``: they can).

    A child gets only the forking thread: where another thread holds a lock (a thread of the
    caller's, JAX's runtime), the child may deadlock on it. torch's own intra-op pool is
    safe to fork (its DataLoader workers rely on that); workers run with one torch thread.
    """
    import threading

    if not sys.platform.startswith("linux"):
        return f"worker processes are forked only on Linux (this is {sys.platform})"
    gpu = [d for d in devices if d != "cpu"]
    if gpu:
        return f"device {gpu[0]!r} cannot be used from a forked worker"
    threaded = [m for m in THREADED_MODULES if m in sys.modules]
    if threaded:
        return f"{threaded[0]} is loaded in this process: its threads make forking unsafe"
    if threading.active_count() > 1:
        return (
            f"this process runs {threading.active_count() - 1} other thread(s): forking is unsafe"
        )
    return ""


def run_groups(
    count: int,
    check: Callable[[int, Callable[[Record], None]], None],
    lost: Callable[[int, Sequence[Record], str], list[Record]],
    emit: Callable[[Record], None],
    jobs: int,
) -> None:
    """Check groups ``0 … count-1``: ``check(i, emit_record)`` checks group ``i``.

    ``lost(i, made, why)`` gives the records group ``i`` still owes when its worker died
    after making ``made``. With ``jobs == 1`` (or one group) everything runs here.
    """
    if jobs <= 1 or count <= 1:
        for i in range(count):
            check(i, emit)
        return
    _Pool(count, check, lost, emit, min(jobs, count)).run()


class _Pool:
    """Forked workers, each given one group at a time by the parent (which thus always knows
    which group a worker holds), records streamed back through one queue."""

    def __init__(
        self,
        count: int,
        check: Callable[[int, Callable[[Record], None]], None],
        lost: Callable[[int, Sequence[Record], str], list[Record]],
        emit: Callable[[Record], None],
        jobs: int,
    ) -> None:
        import multiprocessing

        self.ctx = multiprocessing.get_context("fork")
        self.count, self.check, self.lost, self.emit, self.jobs = count, check, lost, emit, jobs
        self.results: Any = self.ctx.Queue()
        self.records: dict[int, list[Record]] = {i: [] for i in range(count)}
        self.done: set[int] = set()
        self.todo = list(range(count - 1, -1, -1))  # popped from the end: report order
        self.held: dict[int, int] = {}  # worker → the group it checks
        self.next_emit = 0

    def run(self) -> None:
        inboxes = [self.ctx.SimpleQueue() for _ in range(self.jobs)]
        workers = [
            self.ctx.Process(target=self._work, args=(k, inboxes[k]), daemon=True)
            for k in range(self.jobs)
        ]
        for w in workers:
            w.start()
        try:
            for k in range(self.jobs):
                self._assign(k, inboxes[k])
            while len(self.done) < self.count:
                raise_if_interrupted()
                try:
                    kind, worker, payload = self.results.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    self._reap(workers)
                    continue
                group = self.held.get(worker)
                if group is None:
                    continue
                if kind == "record":
                    self.records[group].append(payload)
                else:  # "done"
                    del self.held[worker]
                    self._finish(group)
                    self._assign(worker, inboxes[worker])
        finally:
            for w in workers:
                if w.is_alive():
                    w.kill()
            for w in workers:
                w.join(timeout=5)
            self.results.close()

    def _assign(self, worker: int, inbox: Any) -> None:
        if self.todo:
            group = self.todo.pop()
            self.held[worker] = group
            inbox.put(group)
        else:
            inbox.put(None)

    def _finish(self, group: int) -> None:
        self.done.add(group)
        while self.next_emit in self.done and self.next_emit in self.records:
            for record in self.records.pop(self.next_emit):
                self.emit(record)
            self.next_emit += 1

    def _reap(self, workers: list[Any]) -> None:
        """A dead worker's group gets its missing records as errors; its share of the
        remaining groups goes to the others (or, with none left, they are lost too)."""
        for k, w in enumerate(workers):
            if w.is_alive() or k not in self.held:
                continue
            group = self.held.pop(k)
            code = w.exitcode
            why = (
                "the worker process checking this group died with signal "
                f"{signal.Signals(-code).name}"
                if code is not None and code < 0
                else f"the worker process checking this group exited with status {code}"
            )
            self.records[group] += self.lost(group, self.records[group], why)
            self._finish(group)
        if not any(w.is_alive() for w in workers):
            while self.todo:
                group = self.todo.pop()
                why = "no worker process was left to check this group"
                self.records[group] += self.lost(group, self.records[group], why)
                self._finish(group)

    def _work(self, worker: int, inbox: Any) -> None:
        import torch

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # What the parent made (cases, imported modules) is never garbage here: frozen, the
        # collector neither scans it nor writes to its pages (which would copy them).
        gc.freeze()
        young, middle, old = gc.get_threshold()
        gc.set_threshold(young, middle, max(old, FULL_COLLECTION_EVERY))
        torch.set_num_threads(max(1, available_cpus() // self.jobs))
        try:
            while True:
                group = inbox.get()
                if group is None:
                    break
                self.check(group, lambda r: self.results.put(("record", worker, r)))
                self.results.put(("done", worker, None))
        finally:
            self.results.close()
            self.results.join_thread()
        os._exit(0)  # no atexit handlers, no flushing of buffers inherited from the parent
