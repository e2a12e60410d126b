"""Writing files and folders atomically: build beside the target, then rename, so a reader (or a rerun after
a crash) sees the old state or the finished new one, never a half-written file or folder.

Here in ``models``, which imports neither harness nor adaptation, so that all three use the same helpers:
``write_atomic`` for one file, ``scratch_beside`` + ``move_into_place`` for a folder built in steps.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Literal

_UMASK = os.umask(0o022)  # read the process umask (the only way is to set it) and put it back
os.umask(_UMASK)


def write_atomic(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written file. ``durable`` also
    flushes the data to disk before the rename, so that a power cut cannot leave the name on an empty file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def scratch_beside(target: Path) -> Iterator[Path]:
    """An empty hidden folder next to ``target`` (same filesystem, so renaming it is atomic), removed on leaving
    whatever happened; fill it, then ``move_into_place`` it (or a folder inside it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        os.chmod(scratch, 0o777 & ~_UMASK)  # mkdtemp makes 0700; give the folder the mode mkdir() would
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def move_into_place(built: Path, target: Path, *, existing: Literal["keep", "error", "replace"]) -> None:
    """Rename the finished folder ``built`` to ``target`` (an absent or empty ``target`` is simply replaced).

    When ``target`` is a folder with contents: ``keep`` leaves it (a concurrent builder finished first and
    its result is as good as ours), ``error`` raises FileExistsError, ``replace`` swaps ours in (the old one
    is moved aside first and deleted after).
    """
    if existing == "replace" and target.is_dir():
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.replace(target, aside)  # onto an empty folder: allowed
        try:
            os.replace(built, target)
        except BaseException:
            os.replace(aside, target)
            raise
        shutil.rmtree(aside, ignore_errors=True)
        return
    try:
        os.replace(built, target)
    except OSError:
        if not target.is_dir() or not any(target.iterdir()):
            raise
        if existing == "error":
            raise FileExistsError(f"{target} appeared and filled while this one was being written; "
                                  "choose another folder or remove it") from None
