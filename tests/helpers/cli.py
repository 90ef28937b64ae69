"""Running ``sse-np`` in-process in tests, and byte-exact snapshots of the files it must leave alone."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from sse_np.cli import main


class Files:
    """Byte-exact snapshots (content, mode, kind) of files, and of a folder's listing."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths
        self.before = {p: self._state(p) for p in paths}
        self.listings = {d: sorted(os.listdir(d)) for d in {p.parent for p in paths}}

    @staticmethod
    def _state(path: Path):
        if not os.path.lexists(path):
            return None
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            return ("link", os.readlink(path))
        if stat.S_ISREG(info.st_mode):
            return ("file", path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_ino)
        return ("other", stat.S_IFMT(info.st_mode))

    def assert_unchanged(self) -> None:
        for path, state in self.before.items():
            assert self._state(path) == state, f"{path} changed"
        for folder, names in self.listings.items():
            assert sorted(os.listdir(folder)) == names, f"{folder}: files appeared or vanished"


COMPILE_NOTICE = "sse-np: compiling kernels for this machine"


def without_compile_notice(err: str) -> str:
    """``err`` less the one-time compile notice: printed by whichever command first loads kernels of a new kind
    (in CI, with an empty numba cache, that can be any test's command)."""
    return "".join(line for line in err.splitlines(keepends=True) if not line.startswith(COMPILE_NOTICE))


def fails(capsys, args: list[str], pattern: str) -> str:
    """Run ``sse-np args`` in-process: exit 1, one line on stderr matching ``pattern``, nothing on stdout."""
    status = main(args)
    _out, err = capsys.readouterr()
    err = without_compile_notice(err)
    assert status == 1, err
    assert err.count("\n") == 1 and err.startswith("sse-np: error: "), err
    assert re.search(pattern, err), err
    return err
