"""``python -m sse_np.serve ARGS``: the same as ``sse-np serve ARGS``.

The command line is the package's entry point (:mod:`sse_np.__main__`), run
here as ``python -m sse_np serve ARGS`` would run it; the server package
itself never imports the CLI.
"""

import runpy
import sys

if __name__ == "__main__":
    sys.argv[1:1] = ["serve"]
    runpy.run_module("sse_np", run_name="__main__", alter_sys=True)
