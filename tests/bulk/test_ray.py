"""Bulk embedding on Ray (sse_np.bulk.ray): embed_dataset, ``sse-np encode --ray`` resume and fault tolerance.

One local two-node cluster (head + worker, 1 CPU each, loopback only, no
dashboard) serves every test of the module; it is shut down at the end and
no process it started may survive.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

# Before ray is imported: resolve "this node" to the loopback address (the test cluster listens on
# 127.0.0.1 only; otherwise a driver rewrites 127.0.0.1 to the machine's outward address).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
pytest.importorskip("pyarrow")
ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import sse_np  # noqa: E402
from helpers.models import make_random_model  # noqa: E402
from helpers.sockets import descendants  # noqa: E402
from sse_np.bulk.ray import embed_dataset, vectors_of  # noqa: E402
from sse_np.bulk.ray_job import MANIFEST  # noqa: E402
from sse_np.cli import main  # noqa: E402

DIM = 32
N_FILES, ROWS = 8, 500


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    from ray.cluster_utils import Cluster

    gate = tmp_path_factory.mktemp("gate")  # sse_np.bulk.ray._test_gate: armed by a test that kills an actor
    env = {
        "RAY_USAGE_STATS_ENABLED": "0",
        "SSE_NP_DISABLE_NUMBA": "1",  # numpy engine: same bits, no compile
        "SSE_NP_TEST_RAY_GATE": str(gate),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    before = descendants(os.getpid())
    node_args = dict(
        num_cpus=1, object_store_memory=100 * 1024 * 1024, include_dashboard=False, node_ip_address="127.0.0.1"
    )
    cluster = Cluster(initialize_head=True, head_node_args=node_args)
    try:
        cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        cluster.gate = gate
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        started = descendants(os.getpid()) - before
        cluster.shutdown()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(_alive(p) for p in started):
            time.sleep(0.2)
        left = [(p, _cmdline(p)) for p in started if _alive(p)]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        assert not left, f"processes left behind: {left}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_model(tmp_path_factory.mktemp("ray_model"), dim=DIM, seed=5)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    folder = tmp_path_factory.mktemp("ray_in")
    rng = np.random.default_rng(3)
    words = "cat dog stock price apple pie kitten market river bank loan flood rain sun".split()
    ids, texts = [], []
    for f in range(N_FILES):
        fid = [f"f{f}-{i}" for i in range(ROWS)]
        ftext = [" ".join(rng.choice(words, size=rng.integers(1, 30))) for _ in range(ROWS)]
        pq.write_table(pa.table({"_id": fid, "text": ftext}), folder / f"part-{f:02d}.parquet", row_group_size=100)
        ids += fid
        texts += ftext
    return folder, ids, texts


def _read_output(out: Path) -> tuple[list[str], np.ndarray]:
    table = pq.read_table(sorted(out.glob("*.parquet")))
    return table["_id"].to_pylist(), vectors_of(table)


def test_cli_ray_survives_a_killed_actor(cluster, model_dir, corpus, tmp_path) -> None:
    """SIGKILL an encoding actor mid-job: every id once, every vector bit-identical to SSEModel.encode."""
    folder, ids, texts = corpus
    out = tmp_path / "out"
    result: dict = {}

    def run() -> None:
        try:
            result["rc"] = main(
                [
                    "encode",
                    str(folder),
                    "-o",
                    str(out),
                    "--model",
                    str(model_dir),
                    "--ray",
                    cluster.address,
                    "--batch-size",
                    "10",
                    "--no-progress",
                ]
            )
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    gate: Path = cluster.gate
    (gate / "armed").touch()  # every actor stops after the first chunk of its first file, until "go"
    job = threading.Thread(target=run)
    job.start()
    try:
        waiting: list[Path] = []
        for _ in range(60_000):  # a hang guard, not a time limit: an actor reaches the gate
            waiting = list(gate.glob("*.mid-file"))
            if waiting or not job.is_alive():
                break
            time.sleep(0.01)
        assert waiting, "no actor reached the gate"
        done_at_kill = len(list(out.glob("part-*.parquet")))
        assert list(out.glob(".part-*.partial*"))  # it is half-way through a file
        killed = int(waiting[0].name.split(".")[0])
        os.kill(killed, signal.SIGKILL)
    finally:
        (gate / "go").touch()
        job.join(timeout=300)
        for name in ("armed", "go"):
            (gate / name).unlink()
        for marker in gate.glob("*.mid-file"):
            marker.unlink()
    assert not job.is_alive()
    assert "error" not in result, result.get("error")
    assert result["rc"] == 0
    assert done_at_kill < N_FILES
    got_ids, vectors = _read_output(out)
    assert sorted(got_ids) == sorted(ids) and len(set(got_ids)) == len(ids)  # every id exactly once
    assert got_ids == ids  # files and rows in input order
    ref = sse_np.load(model_dir, backend="numpy").encode(texts, DIM)
    np.testing.assert_array_equal(vectors, ref)
    assert not list(out.glob(".*.partial*"))  # the killed attempt's temp file is cleaned up


def test_cli_ray_resumes_and_refuses_other_arguments(cluster, model_dir, corpus, tmp_path, capsys) -> None:
    folder, ids, _ = corpus
    out = tmp_path / "out"
    args = ["encode", str(folder), "-o", str(out), "--model", str(model_dir), "--ray", cluster.address, "--no-progress"]
    assert main(args) == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert len(first) == N_FILES and json.loads((out / MANIFEST).read_text())["dim"] == DIM
    (out / "part-03.parquet").unlink()  # as if the job had been killed before this file
    capsys.readouterr()
    assert main([*args[:-1], "--progress"]) == 0
    err = capsys.readouterr().err
    assert "resuming: 7 of 8 files already done" in err and "in 1 files" in err
    again = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert {k: v for k, v in again.items() if k != "part-03.parquet"} == {
        k: v for k, v in first.items() if k != "part-03.parquet"
    }
    assert _read_output(out)[0] == ids
    assert main([*args, "--dim", "16"]) == 1
    assert "different arguments (dim: 32 then, 16 now)" in capsys.readouterr().err


def _encoder_actors(cluster) -> set[str]:
    """Ids of every FileEncoder actor the cluster has had, dead ones too (from Ray's control store: the
    state API would need the dashboard, which the test cluster does not run)."""
    from ray._private import state

    ray.init(address=cluster.address, log_to_driver=False)
    try:
        return {key for key, actor in state.actors().items() if "FileEncoder" in actor["ActorClassName"]}
    finally:
        ray.shutdown()


def test_cli_ray_actors_is_the_number_of_encoding_processes(cluster, model_dir, corpus, tmp_path) -> None:
    """--actors 1 on a two-CPU cluster (where the default is two): Ray starts one encoding actor, and one
    process encodes all 8 files. The gate is armed and open: each actor leaves its pid at each file's first
    chunk and goes on."""
    folder, ids, _ = corpus
    out = tmp_path / "out"
    args = ["encode", str(folder), "-o", str(out), "--model", str(model_dir), "--ray", cluster.address]
    before = _encoder_actors(cluster)
    gate: Path = cluster.gate
    (gate / "armed").touch()
    (gate / "go").touch()
    try:
        assert main([*args, "--no-progress", "--actors", "1"]) == 0
        pids = {int(marker.name.split(".")[0]) for marker in gate.glob("*.mid-file")}
    finally:
        for name in ("armed", "go"):
            (gate / name).unlink()
        for marker in gate.glob("*.mid-file"):
            marker.unlink()
    assert len(_encoder_actors(cluster) - before) == 1
    assert len(pids) == 1, pids
    assert _read_output(out)[0] == ids


def test_cli_ray_row_numbered_error(cluster, model_dir, tmp_path, capsys) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    pq.write_table(pa.table({"_id": ["a", "b", "c"], "text": ["x", None, "z"]}), folder / "p.parquet")
    assert (
        main(
            [
                "encode",
                str(folder),
                "-o",
                str(tmp_path / "out"),
                "--model",
                str(model_dir),
                "--ray",
                cluster.address,
                "--no-progress",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert f"{folder / 'p.parquet'}:2: column 'text' is null" in err
    assert not (tmp_path / "out" / "p.parquet").exists()


def test_embed_dataset_matches_encode(cluster, model_dir, corpus) -> None:
    folder, ids, texts = corpus
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        ds = ray.data.read_parquet(str(folder))
        refs = embed_dataset(
            ds, model=str(model_dir), batch_size=256, backend="numpy"
        ).to_arrow_refs()  # autoscaling pool
        table = pa.concat_tables(ray.get(refs))
        assert table.schema.field("embedding").type == pa.list_(pa.float32(), DIM)
        by_id = dict(zip(table["_id"].to_pylist(), vectors_of(table)))
        assert sorted(by_id) == sorted(ids) and table.num_rows == len(ids)
        ref = sse_np.load(model_dir, backend="numpy").encode(texts, DIM)
        np.testing.assert_array_equal(np.stack([by_id[i] for i in ids]), ref)
        numpy_rows = embed_dataset(
            ds.limit(50), model=str(model_dir), dim=16, batch_format="numpy", backend="numpy", num_actors=1
        ).take(50)
        got = np.stack([r["embedding"] for r in numpy_rows])
        want = sse_np.load(model_dir, backend="numpy").encode([r["text"] for r in numpy_rows], 16)
        np.testing.assert_array_equal(got, want)
        # One vector a row (Ray may push the limit before the actors): still each row's own vector.
        limited = embed_dataset(ds, model=str(model_dir), dim=16, backend="numpy", num_actors=1).limit(7).take_all()
        assert len(limited) == 7
        want = sse_np.load(model_dir, backend="numpy").encode([r["text"] for r in limited], 16)
        np.testing.assert_array_equal(np.stack([r["embedding"] for r in limited]), want)
    finally:
        ray.shutdown()
