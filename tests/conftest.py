"""Shared test configuration."""

from __future__ import annotations

import os

# Keep torch on the two cores of the CI machine predictable.
os.environ.setdefault("OMP_NUM_THREADS", "2")
