"""``sse-np encode --ray``: the cluster it starts listens on the loopback interface only (issue 27 item 9).

The job runs in a fresh interpreter (no ``RAY_*`` variable set, as a user runs it) whose driver is held
after its first output row until the test has read the listening sockets of every process below it:
gcs_server, raylet, the workers and the actors are all up then, and the job cannot end first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.data")
import pyarrow as pa
import pyarrow.parquet as pq

from helpers.models import make_random_model
from helpers.paths import REPO
from helpers.sockets import descendants, is_loopback, listening

# The driver, gated: it says READY after its first output row, then waits for a line on stdin.
GATED_DRIVER = """
import sys
import ray.data
from sse_np.cli import main

rows = ray.data.Dataset.iter_rows

def gated(self, *args, **kwargs):
    for i, row in enumerate(rows(self, *args, **kwargs)):
        if i == 0:
            print("READY", flush=True)
            sys.stdin.readline()
        yield row

ray.data.Dataset.iter_rows = gated
sys.exit(main(sys.argv[1:]))
"""


def test_local_cluster_listens_on_loopback_only(tmp_path: Path) -> None:
    model = make_random_model(tmp_path / "model", dim=16, seed=1)
    corpus = tmp_path / "in"
    corpus.mkdir()
    for f in range(2):
        pq.write_table(
            pa.table({"_id": [f"{f}-{i}" for i in range(20)], "text": ["a cat"] * 20}), corpus / f"{f}.parquet"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", SSE_NP_DISABLE_NUMBA="1", PYTHONPATH=str(REPO))
    argv = ["encode", str(corpus), "-o", str(tmp_path / "out"), "--model", str(model), "--ray", "--no-progress"]
    job = subprocess.Popen(
        [sys.executable, "-c", GATED_DRIVER, *argv],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert job.stdout is not None and job.stdin is not None
        line = job.stdout.readline()
        assert line == "READY\n", job.stderr.read() if job.stderr else line
        sockets = listening(descendants(job.pid) | {job.pid})
        job.stdin.write("go\n")
        job.stdin.flush()
        _, err = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    names = {name for _, name, _, _ in sockets}
    assert {"gcs_server", "raylet"} <= names, sockets  # the check saw the cluster itself
    public = [s for s in sockets if not is_loopback(s[2])]
    assert not public, f"listening beyond loopback: {public}"
    assert job.returncode == 0, err
    assert len(list((tmp_path / "out").glob("*.parquet"))) == 2
