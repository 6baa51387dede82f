"""``save`` interrupted at every point where a signal can surface (issue #17, finding 5).

Python runs signal handlers between bytecodes, so a KeyboardInterrupt can surface at any line
of ``ferrinet.io``'s writing code. A tracer raises it at the n-th line (or return) event of
``write_atomic`` and its helpers, for n = 1, 2, ... until a save completes untouched. After each: no temporary file
beside the target, no descriptor left open, the target either the old file or the new one in
full, and the exception's message saying which.
"""

from __future__ import annotations

import os
import sys

import ferrinet
import pytest
from ferrinet import io as ferrinet_io

IO_FILE = os.path.normcase(os.path.abspath(ferrinet_io.__file__))


WRITING = {
    "write_atomic",
    "_create_temporary",
    "_copy_mode",
    "_write_all",
    "_fsync_directory",
    "__init__",  # _DirectoryFd's (the file is checked too); its __del__ is the cleanup
    "close",
}


class _Interrupter:
    """Raises KeyboardInterrupt at the n-th line / return event of the functions that write
    the file (``ferrinet.io.write_atomic`` and its helpers; before it, nothing is touched)."""

    def __init__(self, n):
        self.n = n
        self.events = 0
        self.at = None

    def __call__(self, frame, event, arg):
        if frame.f_code.co_name not in WRITING:
            return None
        if os.path.normcase(os.path.abspath(frame.f_code.co_filename)) != IO_FILE:
            return None
        return self._local(frame, event, arg)

    def _local(self, frame, event, arg):
        if event in ("line", "return"):
            self.events += 1
            if self.events == self.n:
                self.at = (frame.f_code.co_name, event)
                raise KeyboardInterrupt
        return self._local


def _open_fds():
    if not os.path.isdir("/proc/self/fd"):
        return None
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("old_file", [True, False])
def test_save_interrupted_anywhere_leaves_one_whole_file_and_says_which(tmp_path, old_file):
    old = ferrinet.NeuralNetwork([3, 4, 2], seed=0)
    new = ferrinet.NeuralNetwork([3, 5, 2], seed=1)
    old_bytes, new_bytes = old.to_bytes(), new.to_bytes()
    target = tmp_path / "model.safetensors"
    seen = {"completed": 0, "old kept": 0, "new in place": 0}
    for n in range(1, 10_000):
        for p in tmp_path.iterdir():
            p.unlink()
        if old_file:
            target.write_bytes(old_bytes)
        fds = _open_fds()
        tracer = _Interrupter(n)
        message = None
        sys.settrace(tracer)
        try:
            new.save(target)
        except KeyboardInterrupt as err:
            message = str(err)
        finally:
            sys.settrace(None)
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == (["model.safetensors"] if old_file or message is None else names), names
        assert not [m for m in names if m.endswith(".tmp")], (n, names)
        assert _open_fds() == fds, f"interrupt at event {n} left a descriptor open"
        content = target.read_bytes() if target.exists() else None
        if message is None:
            assert content == new_bytes
            seen["completed"] += 1
            break
        if n == 1:  # at the entry of write_atomic, before it started: the caller's interrupt
            assert content == (old_bytes if old_file else None), (n, message)
        elif tracer.at == ("write_atomic", "return"):  # it returned: the caller's interrupt
            assert content == new_bytes
        elif "was not changed" in message:
            assert content == (old_bytes if old_file else None), (n, message)
            seen["old kept"] += 1
        else:
            assert "new file is in place" in message, (n, message)
            assert content == new_bytes, (n, message)
            seen["new in place"] += 1
    assert seen["completed"] == 1, seen
    # the interrupt landed before the rename, and after it, at several points each
    assert seen["old kept"] >= 5 and seen["new in place"] >= 2, seen


def test_an_error_before_the_rename_says_the_old_file_is_in_place(tmp_path, monkeypatch):
    target = tmp_path / "model.safetensors"
    old = ferrinet.NeuralNetwork([3, 4, 2], seed=0)
    old.save(target)
    before = target.read_bytes()

    def full_disk(f, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ferrinet_io, "_write_all", full_disk)
    with pytest.raises(OSError) as info:
        ferrinet.NeuralNetwork([3, 5, 2], seed=1).save(target)
    if sys.version_info >= (3, 11):
        assert any("was not changed" in note for note in info.value.__notes__)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
