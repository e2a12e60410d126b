"""How a command ends when something goes wrong: one line on stderr that says what and what to do, a non-zero
exit status, and no Python traceback unless it was asked for (``--debug`` or ``LLARA_BENCH_DEBUG=1``).

- a :class:`LlaraBenchError` (bad input, bad configuration) prints its message, status 2;
- an :class:`OSError` (a file that cannot be read or written) names the path and the usual remedy, status 2;
- Ctrl-C prints what was kept and how to resume, status 130; SIGTERM unwinds the same way (temporary
  folders are removed by the ``with`` blocks that made them), status 143;
- anything else is a bug: its type and message, and how to see the traceback, status 1.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import Callable, NoReturn

from llara_bench.models.errors import LlaraBenchError

_TRUE = ("1", "true", "yes", "on")
_debug = False
# a line each for what an interrupted command keeps (e.g. "finished shards of X are kept in DIR"), set by the
# code that keeps it, printed when Ctrl-C or SIGTERM stops the command
_kept: dict[str, str] = {}


def set_debug(on: bool) -> None:
    global _debug
    _debug = on


def debug() -> bool:
    return _debug or os.environ.get("LLARA_BENCH_DEBUG", "").strip().lower() in _TRUE


def note_kept(key: str, line: str | None) -> None:
    """Record (or with ``None`` forget) what an interruption now would leave behind for a rerun to reuse."""
    if line is None:
        _kept.pop(key, None)
    else:
        _kept[key] = line


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``with`` blocks and ``finally`` clauses clean up."""


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) while a command runs: raised instead of KeyboardInterrupt, which typer turns into a bare
    exit status 130 before `guarded` could say what was kept."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _on_sigint(signum, frame) -> None:
    raise Interrupted()


_ADVICE = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only; choose a writable path",
    errno.ENOTDIR: "a part of this path is a file, not a folder; choose a folder",
    errno.EISDIR: "this is a folder; give a file",
    errno.ENOENT: "check the path",
    errno.ENOSPC: "the disk is full; free space or choose another path",
    errno.EEXIST: "it already exists; choose another path",
}


def describe_os_error(exc: OSError) -> str:
    """``PATH: reason; what to do`` for an OSError (the path when it has one)."""
    where = f"{exc.filename}: " if exc.filename is not None else ""
    return where + reason_and_advice(exc)


def reason_and_advice(exc: OSError) -> str:
    """``reason; what to do`` for an OSError, for a message that names the path itself."""
    reason = exc.strerror or str(exc)
    advice = _ADVICE.get(exc.errno)
    return f"{reason.lower() if reason[:1].isupper() and reason[1:2].islower() else reason}" + \
        (f"; {advice}" if advice else "")


def guarded(command: Callable[[], object], print_error: Callable[[str], None]) -> int:
    """Run ``command`` (the typer app, not standalone) and turn what escapes it into an exit status."""
    previous = {s: signal.signal(s, handler) for s, handler in ((signal.SIGTERM, _on_sigterm),
                                                                 (signal.SIGINT, _on_sigint))} \
        if _main_thread() else {}
    try:
        result = command()
        return result if isinstance(result, int) else 0
    except (KeyboardInterrupt, Interrupted, Terminated) as exc:
        if debug():
            if isinstance(exc, Interrupted):
                raise KeyboardInterrupt from exc  # Python's own Ctrl-C exit, with the traceback
            raise
        what = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        kept = "; ".join(_kept.values())
        print_error(f"{what}. " + (f"Kept for a rerun: {kept}. Rerun the same command to resume."
                                   if kept else "Nothing was kept; rerun the command to start again."))
        return 143 if isinstance(exc, Terminated) else 130
    except LlaraBenchError as exc:
        if debug():
            raise
        print_error(str(exc))
        return 2
    except OSError as exc:
        if debug():
            raise
        print_error(describe_os_error(exc))
        return 2
    except MemoryError:
        if debug():
            raise
        print_error("out of memory; give a smaller --batch-size or --token-budget, or run on a larger machine")
        return 2
    except Exception as exc:  # a bug: say so in one line; --debug shows where
        if debug():
            raise
        print_error(f"internal error: {type(exc).__name__}: {_bounded(str(exc))} (rerun with --debug or "
                    "LLARA_BENCH_DEBUG=1 for the traceback, and please report it)")
        return 1
    finally:
        _kept.clear()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _bounded(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def error_line(text: str) -> None:
    """``error: TEXT`` on stderr, soft-wrapped so that paths stay whole."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)


def fail(exc: Exception) -> NoReturn:
    """End a command on an expected error: its one line and status 2 (the exception itself under --debug)."""
    import typer

    if debug():
        raise exc
    error_line(str(exc))
    raise typer.Exit(code=2)
