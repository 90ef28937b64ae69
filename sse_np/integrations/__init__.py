"""Adapters for retrieval frameworks (optional extras).

* :mod:`sse_np.integrations.langchain`: ``SSEEmbeddings``, a LangChain
  ``Embeddings`` (the ``langchain`` extra).
* :mod:`sse_np.integrations.llamaindex`: ``SSEEmbedding``, a LlamaIndex
  ``BaseEmbedding`` (the ``llamaindex`` extra).

Nothing is imported here, so ``import sse_np`` never needs either framework.
"""
