"""Progress of long steps, followable wherever the output goes: a rich bar with an ETA on a terminal; off a
terminal (a pipe, a log file, CI), a plain line at most every ``verbosity.LOG_EVERY`` seconds and at the end
(``what: done/total (share), rate/s, ETA m:ss``, then any figures, e.g. losses); nothing under ``--quiet``."""

from __future__ import annotations

import time
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from llara_bench.harness import verbosity


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LogLines:
    """One step's progress as log lines: at most one every ``every`` seconds, and one when it completes unless
    it took under ``brief`` seconds with nothing printed before (a step that short needs no progress)."""

    def __init__(self, console: Console, description: str, total: int, unit: str, every: float | None = None,
                 brief: float = 2.0):
        self.console, self.description, self.total, self.unit = console, description, total, unit
        self.every = verbosity.LOG_EVERY if every is None else every
        self.brief, self.printed = brief, False
        self.start = self.last = time.monotonic()

    def update(self, done: int, figures: str = "") -> None:
        now = time.monotonic()
        if done < self.total and now - self.last < self.every:
            return
        if done >= self.total and not self.printed and now - self.start < self.brief:
            return
        self.last, self.printed = now, True
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"ETA {clock((self.total - done) / rate)}" if rate and done < self.total else f"in {clock(elapsed)}"
        share = f" ({done / self.total:.0%})" if self.total else ""
        line = f"{self.description}: {done:,}/{self.total:,}{share}, {rate:,.1f} {self.unit}/s, {eta}"
        self.console.print(escape(line + (f"  {figures}" if figures else "")), highlight=False, soft_wrap=True)


class Tracker:
    """Progress of any number of steps on one console, each shown as the output allows (see the module)."""

    def __init__(self, console: Console, extra_columns: tuple = ()):
        self.console = console
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TimeRemainingColumn(), *extra_columns, console=console, transient=True) \
            if console.is_terminal and verbosity.level() != "quiet" else None

    def __enter__(self) -> "Tracker":
        if self.bars:
            self.bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bars:
            self.bars.stop()

    def step(self, description: str, total: int, unit: str = "items") -> Callable[[int, str], None]:
        """``update(done, figures="")`` for one step of ``total`` units, ``done`` counted from its start."""
        if verbosity.level() == "quiet":
            return lambda done, figures="": None
        if self.bars is None:
            return LogLines(self.console, description, total, unit).update
        task = self.bars.add_task(description, total=total, figures="")

        def update(done: int, figures: str = "") -> None:
            self.bars.update(task, completed=done, figures=figures)
            if done >= total:
                self.bars.remove_task(task)

        return update

    def counter(self, description: str, total: int, unit: str = "texts") -> Callable[[int], None]:
        """``advance(n)``: the same, counted in increments (the harness's encoders report batches)."""
        update, done = self.step(description, total, unit), 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            update(done)

        return advance
