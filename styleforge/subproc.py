"""Run a Python module in a fresh child process that cannot outlive its parent.

Interpreters (LiteRT, ONNX Runtime, delegates) can die in native code: a ``SIGABRT`` from a
failed check or a ``SIGSEGV`` on a degenerate model takes the whole process with it. Running
them in a child turns that into a :class:`ChildResult` the caller can report. Used by the
export gate (``styleforge.export.verify``) and the benchmark matrix (one cell per child).

No orphans: :func:`run_module` kills the child when the parent is interrupted (Ctrl-C, SIGTERM
via ``styleforge.cli``) or the child runs past its timeout, and the child calls
:func:`die_with_parent` first thing, so it also goes when the parent is killed outright
(``kill -9``): on Linux through ``PR_SET_PDEATHSIG``, elsewhere a watchdog thread.

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


def run_module(
    module: str,
    args: Sequence[str] = (),
    timeout_s: Optional[float] = None,
    env: Optional[dict[str, str]] = None,
) -> ChildResult:
    """Run ``python -m module *args`` in a fresh interpreter and wait for it.

    stdout and stderr are captured (text). The child is killed, and waited for, if it runs past
    ``timeout_s`` or if this process is interrupted while waiting (the exception propagates).
    """
    child_env = {**os.environ, **(env or {}), PARENT_PID_ENV: str(os.getpid())}
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        errors="replace", env=child_env,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return ChildResult(proc.returncode, out, err, timed_out=True, timeout_s=timeout_s)
    except BaseException:  # KeyboardInterrupt / SystemExit in the parent: take the child down too
        proc.kill()
        proc.wait()
        raise
    return ChildResult(proc.returncode, out, err)


def die_with_parent() -> None:
    """Call first thing in a child started by :func:`run_module`: exit when the parent goes.

    Linux: the kernel sends SIGKILL when the parent dies (works even while this process is busy
    in native code). Elsewhere: a daemon thread polls the parent's pid. No-op when this process
    was not started by :func:`run_module`.
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
