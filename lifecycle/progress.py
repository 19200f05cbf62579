"""Progress of long commands (`monitor`, `demo`) on stderr, readable on a terminal and in logs.

On a terminal one line is rewritten in place (carriage return). Anywhere else (a cron log, a
CI job, a pipe) carriage returns would pile every update into one enormous line, so each
update is a line of its own, and only some updates are printed: per task (e.g. one model at
one grain) the first step, each further 10% of its steps, the last step, and otherwise at
most one line per 30 seconds. A 300-window run therefore writes about a dozen lines, each
with its counts and the elapsed time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

LOG_EVERY_SECONDS = 30.0


def elapsed_text(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Reporter:
    """Writes progress updates to `stream` (default stderr) in the form that suits it."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        every_seconds: float = LOG_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _isatty(self.stream) if tty is None else tty
        self.every_seconds = every_seconds
        self.clock = clock
        self.began = clock()
        self._on_screen = 0  # width of the line a terminal shows (0: none)
        self._tasks: dict[str, tuple[int, float]] = {}  # task -> (10% step, time) last logged
        self._last_message: str | None = None

    def step(self, task: str, done: int, total: int, text: str) -> None:
        """Step `done` of `total` of `task`; `text` says what was done (counts included)."""
        line = f"{task}: {text}"
        if self.tty:
            self._rewrite(line)
            return
        now = self.clock()
        tenth = done * 10 // total if total else 10
        logged = self._tasks.get(task)
        if (
            logged is None
            or done >= total
            or tenth > logged[0]
            or now - logged[1] >= self.every_seconds
        ):
            self._tasks[task] = (tenth, now)
            self._line(f"{line} [{elapsed_text(now - self.began)}]")

    def message(self, text: str) -> None:
        """A named phase (e.g. "ingesting 41,000 predictions"): logged when it changes."""
        if self.tty:
            self._rewrite(text)
        elif text != self._last_message:
            self._line(f"{text} [{elapsed_text(self.clock() - self.began)}]")
        self._last_message = text

    def close(self) -> None:
        """End the terminal's progress line, so what follows starts on a line of its own."""
        if self._on_screen:
            print(file=self.stream, flush=True)
            self._on_screen = 0

    def _rewrite(self, line: str) -> None:
        pad = " " * max(0, self._on_screen - len(line))
        print(f"\r{line}{pad}", end="", file=self.stream, flush=True)
        self._on_screen = len(line)

    def _line(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
