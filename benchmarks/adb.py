"""Android phones over adb: push a .tflite, run TFLite's ``benchmark_model``, parse its output.

``benchmark_model`` is Google's own C++ benchmark (``tensorflow/lite/tools/benchmark``); on a phone
it is the reference number people quote, so we run it rather than our Python worker. Its output is
parsed into the same cell schema as local cells (``styleforge.benchmarks.worker``). What it does
not measure stays ``None``: it feeds random inputs, so fidelity is n/a, and it prints only
min/avg/std (newer builds add p5/median/p95), so p90/p99 are n/a unless present.

Only the standard library is used here, so the ``bench`` CLI stays importable on a Raspberry Pi.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from styleforge.errors import StyleforgeError

DEFAULT_BINARY = "/data/local/tmp/benchmark_model"
DEFAULT_REMOTE_DIR = "/data/local/tmp/styleforge"

_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
# "Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, Inference (avg): 2.95034e+06"
_SUMMARY = re.compile(
    rf"Inference timings in us: Init: {_NUMBER}, First inference: {_NUMBER}, "
    rf"Warmup \(avg\): {_NUMBER}, Inference \(avg\): {_NUMBER}"
)
# "count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798 [p5=.. median=.. p95=..]"
_STATS = re.compile(r"^(?:Timings \(microseconds\): )?count=\d+ .*")
_FIELD = re.compile(rf"(\w+)={_NUMBER}")
_MEMORY = (
    # Wording changed across TF releases; all report MB at init and overall.
    re.compile(rf"Peak memory footprint \(MB\): init={_NUMBER} overall={_NUMBER}"),
    re.compile(rf"Memory footprint delta from the start of the tool \(MB\): init={_NUMBER} overall={_NUMBER}"),
)
_PERIODIC_MEMORY = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: {_NUMBER}")
_PARAM = re.compile(r"^([A-Za-z#][^:\[\]]*): \[(.*)\]$")
_DELEGATED = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]+)\)")
_MODEL_SIZE = re.compile(rf"The input model file size \(MB\): {_NUMBER}")
# logcat lines look like "I tflite  : count=25 ..."; strip that prefix before matching.
_LOGCAT_PREFIX = re.compile(r"^[VDIWEF] tflite\s*: ")


class AdbError(StyleforgeError, RuntimeError):
    """adb or benchmark_model failed; the message carries the tool's own last words."""


def _lines(text: str) -> list[str]:
    return [_LOGCAT_PREFIX.sub("", line.rstrip("\r")) for line in text.splitlines()]


def parse_benchmark_model(text: str) -> dict[str, Any]:
    """Parse ``benchmark_model`` console output into numbers (times in microseconds, memory in MB).

    Returns ``init_us``, ``first_us``, ``warmup_avg_us``, ``avg_us`` (from the summary line),
    ``runs`` with ``count/first/curr/min/max/avg/std`` (+ ``p5/median/p95`` when printed) of the
    regular runs, ``memory_init_mb``/``memory_overall_mb`` (or ``None``), ``delegated``
    (``[(delegate, nodes, total)]``), ``params`` (the ``Name: [value]`` header) and
    ``model_size_mb``. Raises :class:`AdbError` when the run failed or no summary is present.
    """
    lines = _lines(text)
    summary = None
    for line in lines:
        match = _SUMMARY.search(line)
        if match:
            summary = [float(v) for v in match.groups()]
    if summary is None:
        errors = [ln.strip() for ln in lines if "ERROR" in ln or "failed" in ln.lower()]
        reason = "; ".join(errors[-3:]) if errors else (lines[-1].strip() if lines else "no output")
        raise AdbError(f"benchmark_model produced no timings: {reason}")

    # The regular-run statistics are the last "count=" line printed before the summary (the one
    # before it is the warmup; op-profiling tables after the summary repeat a "Timings" line).
    stats_lines = []
    for line in lines:
        if _SUMMARY.search(line):
            break
        if _STATS.match(line.strip()) and "avg=" in line:
            stats_lines.append(line.strip())
    runs = {k: float(v) for k, v in _FIELD.findall(stats_lines[-1])} if stats_lines else {}

    memory_init = memory_overall = None
    for line in lines:
        for pattern in _MEMORY:
            match = pattern.search(line)
            if match:
                memory_init, memory_overall = float(match.group(1)), float(match.group(2))
        match = _PERIODIC_MEMORY.search(line)
        if match:
            memory_overall = float(match.group(1))

    params: dict[str, str] = {}
    delegated = []
    model_size = None
    for line in lines:
        match = _PARAM.match(line.strip())
        if match:
            params[match.group(1).strip()] = match.group(2)
        match = _DELEGATED.search(line)
        if match:
            delegated.append((match.group(3), int(match.group(1)), int(match.group(2))))
        match = _MODEL_SIZE.search(line)
        if match:
            model_size = float(match.group(1))

    init_us, first_us, warmup_us, avg_us = summary
    return {
        "init_us": init_us,
        "first_us": first_us,
        "warmup_avg_us": warmup_us,
        "avg_us": avg_us,
        "runs": runs,
        "memory_init_mb": memory_init,
        "memory_overall_mb": memory_overall,
        "delegated": delegated,
        "params": params,
        "model_size_mb": model_size,
    }


def _ms(us: Optional[float]) -> Optional[float]:
    return None if us is None else us / 1000.0


def to_cell_metrics(parsed: dict[str, Any]) -> dict[str, Any]:
    """The parsed numbers in the worker's cell schema (milliseconds, MB; unknowns ``None``)."""
    runs = parsed["runs"]
    mean_ms = _ms(runs.get("avg", parsed["avg_us"]))
    latency = {
        "min": _ms(runs.get("min")),
        "p10": None,
        "p50": _ms(runs.get("median")),
        "p90": None,
        "p99": None,
        "max": _ms(runs.get("max")),
        "mean": mean_ms,
        "std": _ms(runs.get("std")),
    }
    return {
        "import_ms": None,
        "load_ms": _ms(parsed["init_us"]),
        "first_ms": _ms(parsed["first_us"]),
        "latency_ms": latency,
        "runs": int(runs["count"]) if "count" in runs else None,
        "ips": (1000.0 / mean_ms) if mean_ms else None,
        # benchmark_model reports its own memory; "overall" is the closest to our peak increase.
        "rss_before_mb": None,
        "rss_after_import_mb": None,
        "rss_after_load_mb": None,
        "rss_peak_mb": None,
        "rss_increase_mb": parsed["memory_overall_mb"],
        "fidelity": None,
        "backend_info": {
            "backend": "adb",
            "tool": "benchmark_model",
            "delegated": [list(d) for d in parsed["delegated"]],
            "params": parsed["params"],
            "memory_init_mb": parsed["memory_init_mb"],
        },
    }


@dataclass
class AdbDevice:
    """One phone reached through ``adb`` (``serial`` picks it when several are attached)."""

    serial: Optional[str] = None
    binary: str = DEFAULT_BINARY
    adb: str = "adb"
    remote_dir: str = DEFAULT_REMOTE_DIR
    timeout_s: float = 600.0

    def _cmd(self, *args: str) -> list[str]:
        exe = shutil.which(self.adb)
        if exe is None:
            raise AdbError(f"{self.adb!r} not found on PATH: install Android platform-tools")
        return [exe, *(["-s", self.serial] if self.serial else []), *args]

    def _run(self, *args: str, check: bool = True) -> str:
        try:
            proc = subprocess.run(
                self._cmd(*args), capture_output=True, text=True, timeout=self.timeout_s
            )
        except subprocess.TimeoutExpired:
            raise AdbError(f"adb {' '.join(args[:2])} timed out after {self.timeout_s:.0f} s") from None
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise AdbError(f"adb {' '.join(args[:2])} failed: {tail[0]}")
        return proc.stdout + proc.stderr

    def device_info(self) -> dict[str, str]:
        """Model, SoC platform, Android version and ABI as the phone reports them."""
        props = {
            "model": "ro.product.model",
            "manufacturer": "ro.product.manufacturer",
            "soc": "ro.soc.model",
            "platform": "ro.board.platform",
            "android": "ro.build.version.release",
            "abi": "ro.product.cpu.abi",
        }
        return {k: self._run("shell", "getprop", prop).strip() for k, prop in props.items()}

    def push(self, local: Path) -> str:
        """Copy a model to the phone; returns its remote path."""
        remote = f"{self.remote_dir}/{Path(local).name}"
        self._run("shell", "mkdir", "-p", self.remote_dir)
        self._run("push", str(local), remote)
        return remote

    def benchmark(
        self,
        remote_model: str,
        *,
        threads: Optional[int] = None,
        warmup: int = 1,
        runs: int = 50,
        duration_s: Optional[float] = None,
        delegate: Optional[str] = None,
        extra_flags: tuple[str, ...] = (),
    ) -> str:
        """Run ``benchmark_model`` on the phone and return its raw output.

        ``delegate``: ``None`` (CPU; XNNPACK is the tool's default), ``"gpu"``, ``"nnapi"``, or the
        path *on the phone* of an external delegate ``.so``.
        """
        flags = [f"--graph={remote_model}", f"--warmup_runs={warmup}", f"--num_runs={runs}"]
        if threads:
            flags.append(f"--num_threads={threads}")
        if duration_s:
            flags.append(f"--min_secs={duration_s}")
        if delegate == "gpu":
            flags.append("--use_gpu=true")
        elif delegate == "nnapi":
            flags.append("--use_nnapi=true")
        elif delegate:
            flags.append(f"--external_delegate_path={delegate}")
        flags.extend(extra_flags)
        command = " ".join(shlex.quote(part) for part in [self.binary, *flags])
        # A failed run still prints why; parse_benchmark_model turns that into an AdbError.
        return self._run("shell", command, check=False)
