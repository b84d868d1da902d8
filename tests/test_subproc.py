"""Child processes for native code: how they ended, in words, and never an orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from styleforge.subproc import run_module

CHILD = """
import os, sys, time
from styleforge.subproc import die_with_parent
die_with_parent()
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
if sys.argv[2] == "abort":
    os.abort()
print("child says hello", file=sys.stderr)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture()
def child_module(tmp_path) -> dict[str, str]:
    (tmp_path / "sf_child.py").write_text(CHILD)
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is gone for our purposes
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def test_reports_how_the_child_ended(child_module, tmp_path):
    ok = run_module("sf_child", [str(tmp_path / "pid"), "0"], env=child_module)
    assert (ok.returncode, ok.crashed, ok.reason()) == (0, False, "exit status 0")
    assert ok.last_lines() == ["child says hello"]
    aborted = run_module("sf_child", [str(tmp_path / "pid"), "abort"], env=child_module)
    assert aborted.crashed and aborted.reason() == "killed by SIGABRT"
    slow = run_module("sf_child", [str(tmp_path / "pid"), "60"], timeout_s=2, env=child_module)
    assert slow.timed_out and slow.reason() == "timed out after 2 s"
    assert not _alive(int((tmp_path / "pid").read_text()))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_child_dies_with_a_killed_parent(child_module, tmp_path):
    pid_file = tmp_path / "pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"from styleforge.subproc import run_module; run_module('sf_child', [{str(pid_file)!r}, '60'])"],
        env={**os.environ, **child_module},
    )
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)  # no cleanup code runs in the parent
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "orphaned child survived its killed parent"
