"""Bulk embedding: streaming readers and atomic writers, Parquet, Ray Data.

* :mod:`~sse_np.bulk.readers` -- plain lines and JSONL, a chunk at a time, errors naming file and line;
* :mod:`~sse_np.bulk.writers` -- ``.npy`` and JSONL output, written atomically, never over an input;
* :mod:`~sse_np.bulk.parquet` -- Parquet in and out (the ``parquet`` extra);
* :mod:`~sse_np.bulk.ray`     -- Ray Data actors and ``sse-np encode --ray`` (the ``ray`` extra).

Nothing is imported here, so neither pyarrow nor ray is needed until used.
"""
