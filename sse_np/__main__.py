"""``python -m sse_np`` runs the ``sse-np`` command line (see :mod:`sse_np.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
