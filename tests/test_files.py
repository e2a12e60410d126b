"""models/files.py: the one atomic writer for files and the one scratch-then-rename for folders."""

from __future__ import annotations

import os
import re
import resource

import pytest

from llara_bench.models.files import move_into_place, scratch_beside, write_atomic


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_written_file_has_the_mode_open_would_give(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    write_atomic(target, b"data")
    with open(tmp_path / "plain.bin", "wb") as fh:
        fh.write(b"data")
    assert target.read_bytes() == b"data"
    assert target.stat().st_mode & 0o777 == (tmp_path / "plain.bin").stat().st_mode & 0o777 == 0o666 & ~umask()


def test_a_write_failing_midway_leaves_the_old_file_and_no_scratch(tmp_path):
    target = tmp_path / "out.bin"
    write_atomic(target, b"old")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # a real short write: files may not grow past 4 KiB (Python ignores SIGXFSZ, so write() fails with EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(OSError):
            write_atomic(target, b"x" * 65536)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_folder_build_failing_midway_leaves_nothing(tmp_path):
    target = tmp_path / "models" / "built"
    with pytest.raises(RuntimeError, match="build failed"):
        with scratch_beside(target) as scratch:
            (scratch / "weights").write_bytes(b"half")
            raise RuntimeError("build failed")
    assert list((tmp_path / "models").iterdir()) == []


def test_a_built_folder_appears_whole_with_the_mode_mkdir_would_give(tmp_path):
    target = tmp_path / "built"
    with scratch_beside(target) as scratch:
        assert scratch.parent == tmp_path and scratch.name.startswith(".built-") and not any(scratch.iterdir())
        (scratch / "weights").write_bytes(b"ours")
        move_into_place(scratch, target, existing="error")
    (tmp_path / "plain").mkdir()
    assert (target / "weights").read_bytes() == b"ours"
    assert target.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o777 & ~umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built", "plain"]


def build_over(target, existing: str) -> None:
    with scratch_beside(target) as scratch:
        (scratch / "weights").write_bytes(b"ours")
        move_into_place(scratch, target, existing=existing)


@pytest.mark.parametrize("existing", ["keep", "error", "replace"])
def test_an_empty_target_folder_is_filled_whatever_the_mode(tmp_path, existing):
    target = tmp_path / "out"
    target.mkdir()
    build_over(target, existing)
    assert (target / "weights").read_bytes() == b"ours"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("existing, kept", [("keep", b"theirs"), ("replace", b"ours")])
def test_a_filled_target_is_kept_or_replaced(tmp_path, existing, kept):
    target = tmp_path / "out"
    target.mkdir()
    (target / "weights").write_bytes(b"theirs")
    build_over(target, existing)
    assert (target / "weights").read_bytes() == kept
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no scratch, no old copy moved aside


def test_a_filled_target_is_an_error_when_asked(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "weights").write_bytes(b"theirs")
    with pytest.raises(FileExistsError, match=re.escape(f"{target} appeared and filled")):
        build_over(target, "error")
    assert (target / "weights").read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failed_replace_puts_the_old_folder_back(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "weights").write_bytes(b"theirs")
    with pytest.raises(FileNotFoundError):
        move_into_place(tmp_path / "never-built", target, existing="replace")
    assert (target / "weights").read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
