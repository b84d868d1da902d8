"""What every benchmark cell measures about itself: memory (RSS) and latency statistics.

Shared by the model cells (:mod:`styleforge.benchmarks.worker`) and the LUT cells
(:mod:`styleforge.benchmarks.lut_bench`); numpy and the standard library only.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import numpy as np


def current_rss_mb() -> Optional[float]:
    """Resident set size of this process now, in MiB (Linux /proc, else psutil, else None)."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return None


def peak_rss_mb() -> Optional[float]:
    """Peak resident set size of this process so far, in MiB.

    Linux: ``VmHWM`` from /proc, because ``getrusage``'s ``ru_maxrss`` survives ``exec`` and would
    report the parent's (the orchestrator's) peak. Elsewhere ``getrusage(RUSAGE_SELF).ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def reset_peak_rss() -> bool:
    """Start a fresh peak: Linux resets ``VmHWM`` to the current RSS when ``5`` is written to
    ``/proc/self/clear_refs``; False (nothing reset) elsewhere or when that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def latency_stats(times_ms: list[float]) -> dict[str, float]:
    """min/p10/p50/p90/p99/max/mean/std of per-run latencies in ms (linear-interpolated percentiles)."""
    t = np.asarray(times_ms, dtype=np.float64)
    p10, p50, p90, p99 = np.percentile(t, [10, 50, 90, 99])
    return {
        "min": float(t.min()),
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(t.max()),
        "mean": float(t.mean()),
        "std": float(t.std(ddof=1)) if t.size > 1 else 0.0,
    }


def cell_record(size, phases_ms, times: list, rss_mb, fidelity) -> dict:
    """The fields every bench cell reports: ``phases_ms`` = (import, load, first inference),
    ``rss_mb`` = (before import, after import, after load, peak); None where unmeasured."""
    latency = latency_stats(times)
    rss_before, rss_after_import, rss_after_load, peak = rss_mb
    return {
        "size": list(size),
        "import_ms": phases_ms[0],
        "load_ms": phases_ms[1],
        "first_ms": phases_ms[2],
        "latency_ms": latency,
        "runs": len(times),
        "ips": 1000.0 / latency["mean"],
        "rss_before_mb": rss_before,
        "rss_after_import_mb": rss_after_import,
        "rss_after_load_mb": rss_after_load,
        "rss_peak_mb": peak,
        "rss_increase_mb": (peak - rss_before) if rss_before is not None and peak is not None else None,
        "fidelity": fidelity,
    }
