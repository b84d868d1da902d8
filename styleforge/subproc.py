"""Run a child process (a Python module, or the TFLite converter) that cannot outlive its parent.

Interpreters (LiteRT, ONNX Runtime, delegates) can die in native code: a ``SIGABRT`` from a
failed check or a ``SIGSEGV`` on a degenerate model takes the whole process with it. Running
them in a child turns that into a :class:`ChildResult` the caller can report. Used by the
export gate (``styleforge.export.verify``), the TFLite converter (``export.tflite_convert``) and
the benchmark matrix (one cell per child).

No orphans, grandchildren included. :func:`run_guarded` starts the child

* in its own process group (its pid is the group id), so whatever it spawns in turn (onnx2tf
  runs helper tools) can be killed with it in one ``killpg``;
* with ``PR_SET_PDEATHSIG = SIGKILL`` set between fork and exec (Linux), so the kernel kills the
  child the moment the thread that started it dies, even by ``kill -9`` and even while the child
  is busy in native code;
* beside a tiny watchdog process that holds the read end of a pipe only the parent can write to:
  when the parent dies without saying "done", the pipe reads end-of-file and the watchdog kills
  the child's whole process group (the grandchildren, which ``PDEATHSIG`` does not reach).

When the parent is interrupted (Ctrl-C, SIGTERM via ``styleforge.cli``) or the child runs past
its timeout, the group is killed and waited for. A child that calls :func:`die_with_parent` (the
gate and benchmark workers do) also has a watchdog thread where ``prctl`` is missing.

A leaf module: standard library only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Optional, Sequence

PARENT_PID_ENV = "STYLEFORGE_PARENT_PID"


@dataclass(frozen=True)
class ChildResult:
    returncode: int  # negative: killed by that signal (POSIX)
    stdout: str
    stderr: str
    timed_out: bool = False
    timeout_s: Optional[float] = None

    @property
    def crashed(self) -> bool:
        """Killed by a signal (a native crash, the OOM killer) or by our timeout."""
        return self.timed_out or self.returncode < 0

    def reason(self) -> str:
        """How the child ended, in words: ``killed by SIGABRT``, ``exit status 1``, ``timed out ...``."""
        if self.timed_out:
            return f"timed out after {self.timeout_s:.0f} s"
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"killed by {name}"
        return f"exit status {self.returncode}"

    def last_lines(self, n: int = 8) -> list[str]:
        """The last ``n`` non-empty lines the child printed on stderr (else stdout)."""
        lines = [ln.rstrip() for ln in (self.stderr or self.stdout).splitlines() if ln.strip()]
        return lines[-n:]


WATCHDOG = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
group = int(sys.argv[1])
if not os.read(0, 1):  # end of file without the parent's "done" byte: the parent is gone
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""
PR_SET_PDEATHSIG = 1


def _libc_prctl():
    """libc's ``prctl`` (resolved before fork: the child must not load libraries), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(parent: int, prctl):
    """The ``preexec_fn``: runs in the child between fork and exec."""

    def setup() -> None:
        os.setpgid(0, 0)  # its own process group (Popen's process_group= needs Python 3.11)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)  # kept across exec
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return setup


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's process group (the child and what it spawned) and reap the child."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):  # the group is gone already (or no process groups: Windows)
        proc.kill()
    proc.wait()


def run_guarded(
    cmd: Sequence[str],
    timeout_s: Optional[float] = None,
    env: Optional[dict[str, str]] = None,
    cwd: Optional[str] = None,
) -> ChildResult:
    """Run ``cmd`` (argv) with stdout and stderr captured (text) and wait for it.

    The child and everything it spawns end with this process: on a timeout, on an exception
    here (Ctrl-C), and within milliseconds of this process being killed outright (see the
    module docstring). Leftover grandchildren of a child that exits normally are killed too.
    """
    child_env = {**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())}
    posix = os.name == "posix"
    proc = subprocess.Popen(
        list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        errors="replace", env=child_env, cwd=cwd,
        **({"preexec_fn": _child_setup(os.getpid(), _libc_prctl())} if posix else {}),
    )
    watchdog, done = None, None
    if posix:
        read_end, done = os.pipe()  # non-inheritable: only this process holds the write end
        try:
            watchdog = subprocess.Popen([sys.executable, "-S", "-c", WATCHDOG, str(proc.pid)], stdin=read_end,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        except OSError:
            watchdog = None  # PDEATHSIG still covers the child itself
        finally:
            os.close(read_end)
    try:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            return ChildResult(proc.returncode, out, err, timed_out=True, timeout_s=timeout_s)
        except BaseException:  # KeyboardInterrupt / SystemExit in the parent: take the children down too
            _kill_group(proc)
            raise
        if posix:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # grandchildren the child left behind
            except OSError:
                pass
        return ChildResult(proc.returncode, out, err)
    finally:
        if done is not None:
            try:
                os.write(done, b"x")  # "done": the watchdog exits without killing anything
            except OSError:
                pass
            os.close(done)
        if watchdog is not None:
            watchdog.wait()


def run_module(
    module: str,
    args: Sequence[str] = (),
    timeout_s: Optional[float] = None,
    env: Optional[dict[str, str]] = None,
) -> ChildResult:
    """Run ``python -m module *args`` in a fresh interpreter through :func:`run_guarded`."""
    return run_guarded([sys.executable, "-m", module, *args], timeout_s=timeout_s, env=env)


def die_with_parent() -> None:
    """Call first thing in a child started by :func:`run_guarded`: exit when the parent goes.

    Linux: the kernel sends SIGKILL when the parent dies (set again here, for children started
    another way). Elsewhere: a daemon thread polls the parent's pid. No-op when this process was
    not started by :func:`run_guarded`.
    """
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected:
        return
    parent = int(expected)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
