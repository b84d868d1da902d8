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


KILLED_EXPORT = """
import os, sys
from pathlib import Path
from styleforge.export.bundle_writer import writing_bundle
from styleforge.subproc import run_guarded

# A converter stand-in that spawns a grandchild, writes both pids, then works for a minute.
CONVERTER = '''
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{__import__('os').getpid()} {grandchild.pid}")
__import__("os").replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
'''
with writing_bundle(Path(sys.argv[1]), force=False, error=RuntimeError) as tmp:
    (tmp / "model.onnx").write_bytes(b"half")
    run_guarded([sys.executable, "-c", CONVERTER, sys.argv[2]])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, PR_SET_PDEATHSIG")
def test_kill_9_during_conversion_leaves_nothing_running_and_nothing_half(tmp_path, capsys):
    """``kill -9`` of an export while its converter runs: the converter and its child are gone
    within 1 s, and the next export removes the temporary folder the killed one left."""
    from styleforge.export.bundle_writer import writing_bundle

    out, pids = tmp_path / "dist" / "look", tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT, str(out), str(pids)])
    deadline = time.monotonic() + 20
    while not pids.exists() and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.05)
    child, grandchild = (int(p) for p in pids.read_text().split())
    assert _alive(child) and _alive(grandchild)
    stale = list(out.parent.glob(".look.tmp-*"))
    assert len(stale) == 1 and (stale[0] / "model.onnx").exists()

    parent.send_signal(signal.SIGKILL)  # no cleanup code runs in the parent
    parent.wait()
    killed_at = time.monotonic()
    while (_alive(child) or _alive(grandchild)) and time.monotonic() - killed_at < 1.0:
        time.sleep(0.01)
    assert not _alive(child), "the converter outlived its killed parent by 1 s"
    assert not _alive(grandchild), "the converter's own child outlived the killed export by 1 s"
    assert stale[0].exists()  # nobody could clean up...

    capsys.readouterr()
    with writing_bundle(out, force=False, error=RuntimeError) as tmp:  # ...until the next export
        (tmp / "manifest.json").write_text("{}")
    err = capsys.readouterr().err
    assert f"removed stale temporary folder {stale[0]} left by pid {parent.pid}" in err
    assert not stale[0].exists() and (out / "manifest.json").is_file()
    assert list(out.parent.glob(".look.tmp-*")) == [] and not (out / ".owner.json").exists()


def test_a_live_writers_temporary_folder_is_left_alone(tmp_path, capsys):
    from styleforge.export.bundle_writer import remove_stale_temporaries, writing_bundle

    out = tmp_path / "look"
    with writing_bundle(out, force=False, error=RuntimeError) as tmp:
        assert remove_stale_temporaries(out) == [] and tmp.exists()  # ours: still running
    old = tmp_path / ".look.tmp-0ld"  # no owner file: an older styleforge's, kept a day
    old.mkdir()
    assert remove_stale_temporaries(out) == [] and old.exists()
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    assert remove_stale_temporaries(out) == [old] and not old.exists()
    assert "an older styleforge" in capsys.readouterr().err
