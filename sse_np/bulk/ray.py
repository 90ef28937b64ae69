"""Bulk embedding on Ray Data (the ``ray`` extra): a ``map_batches`` actor and ``sse-np encode --ray``.

Each actor loads the model once (memory-mapped, so actors on one node share
the table's pages), warms the numba kernels in its constructor and encodes
with one kernel thread per CPU it holds. Vectors are bit-identical to
:meth:`sse_np.SSEModel.encode` on one machine.

``sse-np encode INPUT -o OUT_DIR --ray`` schedules whole input files on the
actors: each actor reads its file by record batch, encodes and writes one
output file (temporary name, renamed when complete). A rerun with the same
arguments skips the files already done, so a killed job resumes; Ray Data
restarts a dead actor and retries its file, and the atomic rename makes that
retry write each row exactly once.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, missing_extra
from .ray_job import _check_manifest, _manifest, _refuse_overlap, _refuse_unsupported


def require_ray() -> Any:
    """``ray`` with ``ray.data`` (and pyarrow), or a one-line error naming the extra."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data
    except ImportError:
        raise missing_extra("Ray bulk embedding", "ray") from None
    return ray


def init_loopback(ray: Any, **kwargs: Any) -> None:
    """Start a one-node Ray cluster of this machine that listens on the loopback interface only.

    Ray has no authentication of its own worth the name: a cluster reachable from the network runs
    anyone's code. ``_node_ip_address="127.0.0.1"`` alone is not enough: on Linux, Ray (2.4x-2.60)
    rewrites a loopback node address to the machine's outward one unless
    ``ray_constants.ENABLE_RAY_CLUSTER`` is false (``$RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read
    when ray is imported), and gcs_server, raylet and the workers then bind ``*:PORT``. With
    the address kept at 127.0.0.1 they bind 127.0.0.1 only. No dashboard either.
    """
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False  # services.get_node_ip_address reads it at each call
    try:
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", **kwargs)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _cpus_held() -> int:
    """CPUs Ray assigned to this actor (at least 1): the kernel threads to run."""
    import ray

    try:
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    except Exception:  # not in a Ray worker
        cpus = 1
    return max(1, int(cpus))


def _load(model: str | None, threads: int, backend: str) -> Any:
    from ..defaults import default_model_path
    from ..model import load

    path = default_model_path() if model is None else model
    loaded = load(path, threads=threads, backend=backend)
    loaded.warmup()  # compile/load kernels now, not inside the first batch
    return loaded


class SSEEmbedder:
    """Callable class for ``Dataset.map_batches``: adds an embedding column to each batch.

    Parameters
    ----------
    model : str, optional
        Model folder (present on every node) or hub id; default
        :func:`sse_np.default_model_path` of the node.
    dim : int, optional
        Matryoshka dimension (default: the model's).
    column : str or sequence of str
        Text column, or several joined as the evaluation joins a document
        (``(title + " " + text).strip()`` for ``("title", "text")``).
    output_column : str
        Name of the added column.
    normalize : bool or None
        L2-normalise the vectors; None: the model format's own default (SSE: yes).
    batch_size : int
        Texts per encode call.
    threads : int, optional
        Kernel threads (default: the CPUs Ray assigned to the actor).
    backend : str
        Engine back-end (``"numba"``; the same bits as ``"numpy"``).
    """

    def __init__(
        self,
        model: str | None = None,
        dim: int | None = None,
        column: Any = "text",
        output_column: str = "embedding",
        normalize: bool | None = True,
        batch_size: int = 4096,
        threads: int | None = None,
        backend: str = "numba",
    ) -> None:
        self.model = _load(model, threads or _cpus_held(), backend)
        self.dim = self.model.get_embedding_dimension() if dim is None else int(dim)
        self.fields = (column,) if isinstance(column, str) else tuple(column)
        self.output_column, self.normalize, self.batch_size = output_column, normalize, batch_size

    def __call__(self, batch: Any) -> Any:
        from .parquet import batch_texts, vectors_array

        if isinstance(batch, dict):  # batch_format="numpy": dict of arrays
            texts: Sequence[str] = _numpy_texts(batch, self.fields)
            out = dict(batch)
            out[self.output_column] = self.model.encode(
                texts, self.dim, batch_size=self.batch_size, normalize=self.normalize
            )
            return out
        texts = batch_texts(batch, self.fields, "<ray batch>", 1)
        vectors = self.model.encode(texts, self.dim, batch_size=self.batch_size, normalize=self.normalize)
        return batch.append_column(self.output_column, vectors_array(vectors))


def _numpy_texts(batch: dict, fields: tuple[str, ...]) -> list[str]:
    from .readers import join_fields

    for key in fields:
        if key not in batch:
            raise DataError("<ray batch>", f"no column {key!r} (columns: {', '.join(map(repr, batch))})")
    if len(fields) == 1:
        texts = batch[fields[0]].tolist()
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(
                    "<ray batch>", f"column {fields[0]!r} is {type(text).__name__}, expected a string", i + 1
                )
        return texts
    columns = [batch[key].tolist() for key in fields]
    return [
        join_fields(dict(zip(fields, values)), fields, "<ray batch>", i + 1) for i, values in enumerate(zip(*columns))
    ]


def embed_dataset(
    ds: Any,
    *,
    column: Any = "text",
    output_column: str = "embedding",
    model: str | None = None,
    dim: int | None = None,
    batch_size: int = 4096,
    num_actors: int | None = None,
    num_cpus_per_actor: int = 1,
    normalize: bool | None = True,
    batch_format: str = "pyarrow",
    backend: str = "numba",
    **map_batches_kwargs: Any,
) -> Any:
    """Add an embedding column to a Ray dataset, with a pool of sse_np actors.

    Parameters
    ----------
    ds : ray.data.Dataset
        Rows with the text column(s).
    column : str or sequence of str
        Text column; several are joined as the evaluation joins a document.
    output_column : str
        The added column: ``fixed_size_list<float32>[dim]`` (``batch_format="pyarrow"``)
        or a tensor column (``"numpy"``).
    model : str, optional
        Model folder on every node, or hub id (default: the node's default model).
    dim : int, optional
        Matryoshka dimension (default: the model's).
    batch_size : int
        Rows per batch handed to an actor (a batch of 512-d float32 vectors
        is 8 MB). 16,384 was no faster in ``bench/ray_bench.py`` at 1M texts
        (two interleaved runs: 31.8k and 29.0k texts/s, against 32.4k and
        37.5k with 4,096).
    num_actors : int, optional
        Actors in a fixed pool; leave CPUs for the read tasks, or the job
        stalls (default: a pool autoscaling from 1 to the cluster's CPUs /
        ``num_cpus_per_actor``).
    num_cpus_per_actor : int
        CPUs each actor holds; it runs that many kernel threads.
    normalize : bool or None
        L2-normalise the vectors; None: the model format's own default (SSE: yes).
    batch_format : {"pyarrow", "numpy"}
        Batch type the actors receive.
    backend : str
        Engine back-end of the actors.
    **map_batches_kwargs
        Passed to ``Dataset.map_batches`` (e.g. ``memory=``, ``runtime_env=``).

    Returns
    -------
    ray.data.Dataset
        The lazy dataset with the embedding column.

    Notes
    -----
    A single text column reaches the kernel in Arrow's own buffers (no
    Python string per row). On small nodes, set
    ``RAY_DATA_PARQUET_FOOTER_NUM_ACTORS`` to a few in the driver's
    environment before ``read_parquet`` (it is read there): Ray Data 2.60's
    ``read_parquet`` otherwise starts 32 short-lived actors to read footers,
    which on 2 cores cost more CPU than moving the data
    (``bench/ray_bench.py``).
    """
    ray = require_ray()
    if num_actors is None:
        if not ray.is_initialized():
            init_loopback(ray)
        most = max(1, int(ray.cluster_resources().get("CPU", 1) // num_cpus_per_actor))
        # Autoscaling: a fixed pool holding every CPU would starve the Parquet read tasks.
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=most)
    else:
        pool = ray.data.ActorPoolStrategy(size=num_actors)
    if "udf_modifying_row_count" in inspect.signature(ds.map_batches).parameters:  # Ray >= 2.5x
        # One vector a row: Ray may then push a later .limit() before the actors.
        map_batches_kwargs.setdefault("udf_modifying_row_count", False)
    return ds.map_batches(
        SSEEmbedder,
        fn_constructor_kwargs=dict(
            model=model,
            dim=dim,
            column=column,
            output_column=output_column,
            normalize=normalize,
            batch_size=batch_size,
            threads=num_cpus_per_actor,
            backend=backend,
        ),
        batch_size=batch_size,
        batch_format=batch_format,
        compute=pool,
        num_cpus=num_cpus_per_actor,
        **map_batches_kwargs,
    )


# -- sse-np encode --ray ----------------------------------------------------
class FileEncoder:
    """``Dataset.map`` actor of ``sse-np encode --ray``: one input Parquet file to one output file."""

    def __init__(
        self,
        model: str,
        dim: int,
        fields: tuple[str, ...],
        keep: tuple[str, ...],
        id_field: str | None,
        normalize: bool | None,
        batch_size: int,
        threads: int,
        backend: str = "numba",
    ) -> None:
        self.model = _load(model, threads, backend)
        self.dim, self.fields, self.keep, self.id_field = dim, fields, keep, id_field
        self.normalize, self.batch_size = normalize, batch_size

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from .parquet import ParquetWriter, read_chunks
        from .writers import AtomicOutput

        target = AtomicOutput(row["output"])
        assert target.file is not None  # opened: AtomicOutput's default
        try:
            writer = ParquetWriter(target.file, self.dim)
            for i, chunk in enumerate(
                read_chunks(row["input"], self.fields, self.keep, self.id_field, chunk_rows=self.batch_size)
            ):
                vectors = self.model.encode(chunk.texts, self.dim, batch_size=self.batch_size, normalize=self.normalize)
                with target.writing():
                    writer.write(vectors, chunk.kept)
                if i == 0:
                    _test_gate()
            with target.writing():
                writer.close()
                target.commit()
        except BaseException:
            target.abort()
            raise
        return {"input": row["input"], "output": row["output"], "rows": writer.rows}


def _test_gate() -> None:
    """Hold this actor half-way through a file while a test's gate is armed (``$SSE_NP_TEST_RAY_GATE``).

    tests/bulk/test_ray.py kills an actor at this point: with the gate, the job cannot finish before
    the test has done so. Unset (always, outside that test), it costs one environment lookup per file.
    """
    gate = os.environ.get("SSE_NP_TEST_RAY_GATE")
    if not gate or not os.path.exists(os.path.join(gate, "armed")):
        return
    Path(gate, f"{os.getpid()}.mid-file").touch()
    while not os.path.exists(os.path.join(gate, "go")):
        time.sleep(0.01)


def _data_error_in(exc: BaseException) -> DataError | None:
    """The DataError a remote actor raised, found in Ray's wrapping exceptions."""
    seen = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, DataError):
            return cur
        stack += [cur.__cause__, cur.__context__, getattr(cur, "cause", None)]
    # Ray Data may hand back only the remote traceback's text: take the DataError's line from it.
    found = re.search(r"sse_np\.errors\.DataError: (.+)", str(exc))
    if found is None:
        return None
    text = found.group(1).strip()
    where = re.match(r"(.+?):(\d+): (.+)", text) or re.match(r"(.+?): (.+)", text)
    if where is None:
        return DataError("<ray>", text)
    last = where.lastindex or 1
    return DataError(where.group(1), where.group(last), int(where.group(2)) if last == 3 else None)


def run_cli(args: Any) -> int:
    """``sse-np encode INPUT -o OUT_DIR --ray [ADDRESS]``: one output Parquet file per input file, resumable."""
    ray = require_ray()
    from ..defaults import default_model_path
    from ..engine import numba_available
    from ..model import load
    from .parquet import parquet_files
    from .readers import split_fields

    _refuse_unsupported(args)
    root = Path(args.input)
    files = parquet_files(root)
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(out_dir, "with --ray the output is a folder (one Parquet file per input file)")
    if not out_dir.parent.is_dir():
        raise DataError(out_dir, f"folder {out_dir.parent} does not exist")
    model_path = str(default_model_path() if args.model is None else args.model)
    probe = load(model_path, backend="numpy")  # memory-mapped: checks model and dim before the cluster
    if args.dim is not None and args.dim > int(probe.dim):
        raise ValueError(f"--dim {args.dim} exceeds the model's native dimension {probe.dim}")
    dim = probe.get_embedding_dimension() if args.dim is None else args.dim
    _refuse_overlap(root, out_dir, probe)
    manifest = _manifest(args, probe, dim, files, root)
    del probe
    out_dir.mkdir(exist_ok=True)
    _check_manifest(out_dir, manifest)
    jobs, done = [], 0
    for path in files:
        rel = path.relative_to(root) if root.is_dir() else Path(path.name)
        dest = out_dir / rel
        if dest.is_file():
            done += 1  # complete: outputs appear only by rename
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        jobs.append({"input": str(path), "output": str(dest)})
    say = (lambda msg: print(f"sse-np: {msg}", file=sys.stderr)) if args.progress is not False else (lambda msg: None)
    if done:
        say(f"resuming: {done} of {len(files)} files already done")
    if not jobs:
        say("nothing to do")
        return 0
    threads = args.threads or 1
    started = not ray.is_initialized()
    if started:
        local = args.ray == "local"  # a one-node cluster of this machine, on the loopback interface only
        if local:
            init_loopback(ray, log_to_driver=False)
        else:
            ray.init(address=args.ray, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = bool(args.progress)
    try:
        cpus = ray.cluster_resources().get("CPU", 1)
        actors = min(args.actors or max(1, int(cpus // threads)), len(jobs))
        keep = tuple(k for k in args.keep.split(",") if k) if args.keep else ()
        ds = ray.data.from_items(jobs, override_num_blocks=len(jobs)).map(
            FileEncoder,
            fn_constructor_kwargs=dict(
                model=model_path,
                dim=dim,
                fields=split_fields(args.field or "text"),
                keep=keep,
                id_field=args.id_field,
                normalize=False if args.no_normalize else None,
                batch_size=args.batch_size,
                threads=threads,
                backend="numba" if numba_available() else "numpy",
            ),
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=threads,
        )
        rows = 0
        try:
            for result in ds.iter_rows():
                rows += int(result["rows"])
                say(f"wrote {result['output']} ({result['rows']} rows)")
        except Exception as exc:
            found = _data_error_in(exc)
            if found is not None:  # the actor's FILE:ROW message, not Ray's traceback
                raise found.with_traceback(None) from None
            raise
    finally:
        if started:
            ray.shutdown()
    for stale in out_dir.rglob(".*.partial*"):  # temp files of attempts killed mid-file (all files are done now)
        stale.unlink(missing_ok=True)
    print(f"wrote {rows} x {dim} float32 (parquet) in {len(jobs)} files to {out_dir}", file=sys.stderr)
    return 0


def vectors_of(table: Any) -> np.ndarray:
    """The ``embedding`` column of an Arrow table as an ``(n, dim)`` float32 array (no copy)."""
    col = table.column("embedding").combine_chunks()
    return col.values.to_numpy().reshape(len(col), col.type.list_size)
