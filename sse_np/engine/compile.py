"""Compile a model's kernels into numba's cache, in a process of its own.

``Engine`` runs this in a child process when its stamp is missing, so the
compiler's long stretches under the GIL never stall the parent, which keeps
answering on NumPy meanwhile. Usage: ``main([model_folder, stamp_file])``.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Load ``argv[0]`` with numba (compiling into the cache), then write the stamp ``argv[1]``."""
    from pathlib import Path

    from ..checkpoint.formats import read_model
    from .core import Engine
    from .jit import write_stamp

    folder, stamp = argv
    Engine.from_checkpoint(read_model(folder), "numba", folder)  # compiles every kernel this model uses
    write_stamp(Path(stamp))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
