"""``bench/`` is a folder of scripts, not an installed package: put it on ``sys.path`` so the
tests import ``accuracy_lib`` and ``baseline_bytetrack`` the way the scripts do."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
