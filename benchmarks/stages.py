"""Resumable pipeline stages shared by ``make demo`` and ``styleforge eval-looks``.

A stage runs one ``styleforge`` subcommand in a child process (so each stage's memory is
returned to the system and its progress bar shows as it runs) and records completion in a
marker file. Rerunning a pipeline skips every stage whose marker exists and whose outputs are
still there, so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from styleforge.errors import StyleforgeError


def single_thread_env() -> dict[str, str]:
    """Environment for the small CPU training stages: one OpenMP thread unless the user chose.

    The ``cpu`` preset's networks are too small to gain from a second thread, and torch's OpenMP
    threads stall (measured: up to 20x slower) whenever another process shares the cores.
    """
    return {} if "OMP_NUM_THREADS" in os.environ else {"OMP_NUM_THREADS": "1"}


class StageError(StyleforgeError, RuntimeError):
    """A stage's command failed; the message names the stage and the command."""


@dataclass
class Stages:
    """Runs named stages under ``root``; ``timings`` collects each stage's wall time in seconds."""

    root: Path
    timings: dict[str, float] = field(default_factory=dict)
    quiet: bool = False
    ran: list[str] = field(default_factory=list)  # stages this object ran anew (not reused)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        (self.root / ".stages").mkdir(parents=True, exist_ok=True)

    def _marker(self, name: str) -> Path:
        return self.root / ".stages" / f"{name}.json"

    def done(self, name: str, outputs: Sequence[Path] = ()) -> bool:
        marker = self._marker(name)
        return marker.is_file() and all(Path(p).exists() for p in outputs)

    def run(self, name: str, argv: Sequence[str], outputs: Sequence[Path] = (), env: Optional[dict] = None) -> None:
        """Run ``styleforge ARGV`` unless stage ``name`` already finished with its ``outputs`` present."""
        if self.done(name, outputs):
            prior = json.loads(self._marker(name).read_text())
            self.timings[name] = float(prior.get("seconds", 0.0))
            self.say(f"[{name}] done earlier ({prior.get('seconds', 0):.0f} s) - reusing")
            return
        cmd = [sys.executable, "-m", "styleforge", *map(str, argv)]
        self.say(f"[{name}] {' '.join(cmd[2:])}")
        start = time.perf_counter()
        child_env = dict(os.environ, **(env or {}))
        result = subprocess.run(cmd, env=child_env)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise StageError(f"stage {name!r} failed (exit {result.returncode}): {' '.join(cmd[2:])}")
        self.timings[name] = seconds
        self.ran.append(name)
        self._marker(name).write_text(json.dumps({"seconds": seconds, "argv": list(map(str, argv))}))
        self.say(f"[{name}] finished in {seconds:.0f} s")

    def record(self, name: str, seconds: float) -> None:
        """Mark an in-process stage as done."""
        self.timings[name] = seconds
        self._marker(name).write_text(json.dumps({"seconds": seconds}))

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)
