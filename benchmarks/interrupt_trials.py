"""Interrupt and kill trials: `verijac check` stopped by SIGINT or SIGTERM at random moments.

For each trial, starts `verijac check --profile ci --json RUN.json`, waits a random time after
its first line, sends the signal, and records the exit status, whether the run file is valid
JSON marked interrupted, and whether a temporary file was left. Prints one line per trial and
a summary per signal (docs/reliability.md quotes it).

    python benchmarks/interrupt_trials.py --trials 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time


def trial(sig: signal.Signals, delay: float) -> tuple[int, bool, bool, float]:
    """(exit status, run file valid and marked interrupted, temporary file left, seconds to
    stop after the signal)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.json")
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "verijac", "check", "--profile", "ci", "--seed", "1"),
                *("--no-progress", "-q", "--json", out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(delay)
        sent = time.perf_counter()
        proc.send_signal(sig)
        proc.communicate(timeout=300)
        stopped = time.perf_counter() - sent
        valid = False
        try:
            with open(out, encoding="utf-8") as fh:
                valid = json.load(fh)["settings"].get("interrupted") is True
        except (OSError, ValueError, KeyError):
            valid = False
        litter = any(name.endswith(".tmp") for name in os.listdir(tmp))
        return proc.returncode, valid, litter, stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for sig in (signal.SIGINT, signal.SIGTERM):
        results = []
        for k in range(args.trials):
            delay = rng.uniform(0.2, 8.0)
            code, valid, litter, stopped = trial(sig, delay)
            results.append((code, valid, litter, stopped))
            print(
                f"{sig.name} trial {k + 1}: after {delay:.1f}s → exit {code}, run file "
                f"{'valid, interrupted' if valid else 'MISSING/INVALID'}, "
                f"{'temporary file left' if litter else 'no temporary file'}, "
                f"stopped {stopped:.1f}s after the signal",
                flush=True,
            )
        ok = sum(c == 130 and v and not t for c, v, t, _ in results)
        worst = max(s for *_, s in results)
        print(
            f"{sig.name}: {ok}/{len(results)} trials exit 130 with a valid interrupted run file "
            f"and no temporary file; slowest stop {worst:.1f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
