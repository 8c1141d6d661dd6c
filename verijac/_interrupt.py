"""Signals during a check: interrupts that are never lost, and time limits on calls.

Ctrl-C during a check stops it at the next safe point.

A ``KeyboardInterrupt`` raised by Python's default handler lands wherever the interpreter
happens to be, and some places swallow it (an exception in a ``gc`` callback, such as the one
Hypothesis installs, is printed and dropped): the run then went on and ended "PASSED". While a
check runs, `interruptible` replaces the SIGINT handler: the first Ctrl-C sets a flag that the
runner checks between paths and batches (`raise_if_interrupted`); a second one raises at once.
SIGTERM is handled like a second Ctrl-C, so that files being written are cleaned up.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class _State:
    requested = False
    depth = 0


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed since the check began."""
    if _State.requested:
        raise KeyboardInterrupt


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if _State.requested:  # the second Ctrl-C: stop now
        raise KeyboardInterrupt
    _State.requested = True


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _State.requested = True
    raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Install the handlers for the duration of a check (main thread only; nested calls share
    one installation). Off the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread() or _State.depth:
        yield
        return
    old_int = signal.getsignal(signal.SIGINT)
    old_term = signal.getsignal(signal.SIGTERM)
    # Only replace a handler Python owns: an embedding application's own stays.
    take_int = old_int is signal.default_int_handler
    take_term = old_term in (signal.SIG_DFL, None)
    _State.requested = False
    _State.depth = 1
    if take_int:
        signal.signal(signal.SIGINT, _on_sigint)
    if take_term:
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
        raise_if_interrupted()  # pressed during the last path
    finally:
        _State.depth = 0
        _State.requested = False
        if take_int:
            signal.signal(signal.SIGINT, old_int)
        if take_term:
            signal.signal(signal.SIGTERM, old_term)


class TimeLimitExceeded(Exception):
    """A call ran past its time limit (an op that hangs, say)."""


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise `TimeLimitExceeded` in the body after ``seconds`` (``None``: no limit).

    SIGALRM: on POSIX in the main thread only; elsewhere, and for a hang inside one C++
    kernel until it returns, the limit cannot apply. The exception is never raised inside
    torch's own Python code, only in the function under test or in verijac.
    """
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    assert seconds is not None

    import os
    import sys

    torch = sys.modules.get("torch")
    torch_file = getattr(torch, "__file__", None)
    inside = os.path.dirname(torch_file) + os.sep if isinstance(torch_file, str) else None

    def expire(signum: int, frame: FrameType | None) -> None:
        if inside is not None and frame is not None and frame.f_code.co_filename.startswith(inside):
            # Never raise inside torch's own Python code (a transform's bookkeeping could be
            # cut in half and break every later transform): try again a moment later, once
            # control is back in the function under test or in verijac.
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        raise TimeLimitExceeded(
            f"{what} did not return within {seconds:.1f}s (its share of the time budget): "
            "the function under test may hang"
        )

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


__all__ = ["TimeLimitExceeded", "interruptible", "raise_if_interrupted", "time_limit"]
