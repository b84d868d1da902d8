"""What a benchmark ran on: CPU and its SIMD features, memory, OS and exact runtime versions.

A latency number without this block is not comparable with anyone else's. Versions are read from
package metadata (no import), so collecting the block does not load TensorFlow or torch; only the
optional probes (ONNX Runtime providers, torch CUDA) import their library, and only when installed.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

# /proc/cpuinfo flag -> the name engineers know. x86 first, then ARM ("Features" line).
CPU_FEATURES = {
    "sse4_2": "SSE4.2",
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "avx512f": "AVX-512F",
    "avx512bw": "AVX-512BW",
    "avx512_vnni": "AVX-512 VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "avx512_fp16": "AVX-512 FP16",
    "avx_vnni": "AVX-VNNI",
    "amx_tile": "AMX",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "neon": "NEON",
    "asimd": "NEON (ASIMD)",
    "asimdhp": "FP16 arithmetic",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
    "bf16": "BF16",
    "sve": "SVE",
    "sve2": "SVE2",
    "sme": "SME",
}

# Distribution names whose versions matter for inference speed and numerics.
RUNTIME_PACKAGES = (
    "ai-edge-litert",
    "tflite-runtime",
    "tensorflow",
    "tensorflow-cpu",
    "onnxruntime",
    "onnxruntime-gpu",
    "torch",
    "coremltools",
    "numpy",
    "pillow",
)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


# ARM's "CPU part" numbers (implementer 0x41) of the cores found in phones, Pis and servers;
# 64-bit Raspberry Pi OS prints no "model name", so this is the only way to name the core.
ARM_CORES = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710", "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2", "0xd4d": "Cortex-A715", "0xd4e": "Cortex-X3", "0xd4f": "Neoverse-V2",
    "0xd80": "Cortex-A520", "0xd81": "Cortex-A720", "0xd82": "Cortex-X4",
}


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """``/proc/cpuinfo`` text -> CPU name, board (Raspberry Pi "Model"), raw flags, feature names."""
    model = board = ""
    flags: set[str] = set()
    parts: list[str] = []
    implementer = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "cpu model") and not model:
            model = value
        elif key == "model" and not board and not value.isdigit():  # x86's "model" is a number
            board = value
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key == "cpu implementer" and not implementer:
            implementer = value
        elif key == "cpu part" and value not in parts:
            parts.append(value)
    cores = [ARM_CORES.get(p, p) for p in parts] if implementer == "0x41" else []
    if cores and (not model or model.startswith("ARMv")):
        # "ARMv7 Processor rev 3 (v7l)" says nothing about speed; the core names do (big.LITTLE: all)
        model = " + ".join(cores) + (f" ({model})" if model else "")
    features = [name for flag, name in CPU_FEATURES.items() if flag in flags]
    return {"model": model, "board": board or None, "features": features}


def cpu_info() -> dict[str, Any]:
    """Model name, board, logical cores (total and usable by this process) and SIMD features."""
    parsed = parse_cpuinfo(_read("/proc/cpuinfo"))
    model = parsed["model"] or platform.processor() or platform.machine()
    if sys.platform == "darwin":
        model = _sysctl("machdep.cpu.brand_string") or model
    board = parsed["board"] or _read("/proc/device-tree/model").strip("\x00\n ") or None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "model": model,
        "board": board,
        "arch": platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "features": parsed["features"],
        "cpufreq_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").strip() or None,
    }


def _sysctl(name: str) -> str:
    import subprocess

    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def memory_info() -> dict[str, Optional[float]]:
    """Total and available RAM in MiB (Linux /proc/meminfo; psutil elsewhere when installed)."""
    fields = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[key] = int(parts[0]) / 1024.0  # kB -> MiB
    if fields:
        return {"total_mb": fields.get("MemTotal"), "available_mb": fields.get("MemAvailable")}
    try:
        import psutil

        vm = psutil.virtual_memory()
        return {"total_mb": vm.total / 2**20, "available_mb": vm.available / 2**20}
    except ImportError:
        return {"total_mb": None, "available_mb": None}


def package_versions(names: tuple[str, ...] = RUNTIME_PACKAGES) -> dict[str, str]:
    """Installed versions of the runtime packages (missing ones are left out)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def onnxruntime_providers() -> Optional[list[str]]:
    """ONNX Runtime's available execution providers, or ``None`` when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return list(onnxruntime.get_available_providers())


def torch_cuda() -> Optional[dict[str, Any]]:
    """torch's CUDA build and devices, or ``None`` when torch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    available = bool(torch.cuda.is_available())
    return {
        "cuda_build": torch.version.cuda,
        "available": available,
        "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if available else [],
        "threads": torch.get_num_threads(),
    }


def collect(probe_runtimes: bool | tuple[str, ...] = True) -> dict[str, Any]:
    """The environment block of a benchmark report.

    ``probe_runtimes`` imports ONNX Runtime and torch (when installed) to list providers and CUDA
    devices: ``True`` both, a tuple of backend names only those, ``False`` none (metadata only).
    """
    if probe_runtimes is True:
        probe_runtimes = ("onnxruntime", "torch")
    env: dict[str, Any] = {
        "cpu": cpu_info(),
        "memory": memory_info(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": package_versions(),
        # Thread-count variables silently change what "--threads" means; record them.
        "env_vars": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS") if k in os.environ},
    }
    try:  # a busy machine makes every latency worse; say how busy it was
        env["load_avg_1m"] = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        env["load_avg_1m"] = None
    if probe_runtimes and "onnxruntime" in probe_runtimes:
        env["onnxruntime_providers"] = onnxruntime_providers()
    if probe_runtimes and "torch" in probe_runtimes:
        env["torch_cuda"] = torch_cuda()
    return env


def summary_lines(env: dict[str, Any]) -> list[str]:
    """The block as short ``key: value`` lines for the console and the markdown report."""
    cpu = env.get("cpu", {})
    mem = env.get("memory", {})
    total = mem.get("total_mb")
    lines = [
        f"CPU: {cpu.get('model') or '?'} ({cpu.get('arch')}), {cpu.get('usable_cores')}/{cpu.get('logical_cores')} cores usable"
        + (f"; board: {cpu['board']}" if cpu.get("board") else ""),
        f"CPU features: {', '.join(cpu.get('features') or []) or 'none detected'}",
        f"Memory: {total / 1024:.1f} GiB" if total else "Memory: ?",
        f"OS: {env.get('platform')}; Python {env.get('python')}",
        f"Load average (1 min) at start: {env.get('load_avg_1m')}",
        "Runtimes: " + (", ".join(f"{k} {v}" for k, v in env.get("packages", {}).items()) or "none"),
    ]
    if env.get("onnxruntime_providers") is not None:
        lines.append("ONNX Runtime providers: " + ", ".join(env["onnxruntime_providers"]))
    cuda = env.get("torch_cuda")
    if cuda is not None:
        state = ", ".join(cuda["devices"]) if cuda["available"] else "CUDA not available"
        lines.append(f"torch CUDA: {state} (build {cuda['cuda_build']})")
    for device in env.get("adb_devices", []):
        lines.append("Android: " + ", ".join(f"{k}={v}" for k, v in device.items() if v))
    return lines
