"""The environment block: CPU naming on ARM boards and on this machine, and the summary lines."""

from __future__ import annotations

from styleforge.benchmarks.environment import collect, cpu_info, parse_cpuinfo, summary_lines


def test_cpuinfo_names_the_arm_core_and_board():
    # the layout a Raspberry Pi 4 prints under 64-bit Raspberry Pi OS: no "model name" line
    pi4 = ("processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
           "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n"
           "CPU revision\t: 3\n\nHardware\t: BCM2835\nRevision\t: d03115\nModel\t\t: Raspberry Pi 4 Model B Rev 1.5\n")
    parsed = parse_cpuinfo(pi4)
    assert parsed == {"model": "Cortex-A72", "board": "Raspberry Pi 4 Model B Rev 1.5", "features": ["NEON (ASIMD)"]}
    here = cpu_info()  # this machine, for real
    assert here["model"] and here["logical_cores"] >= here["usable_cores"] >= 1
    assert here["board"] is None or not here["board"].isdigit()


def test_summary_lines_without_probing_runtimes():
    env = collect(probe_runtimes=False)
    lines = summary_lines(env)
    assert lines[0].startswith("CPU: ") and any(line.startswith("Runtimes: ") for line in lines)
    assert "numpy" in env["packages"] and "onnxruntime_providers" not in env
