"""Adapters for retrieval frameworks (optional extras).

* :mod:`sse_np.integrations.langchain`: ``SSEEmbeddings``, a LangChain
  ``Embeddings`` (``pip install 'sse_np[langchain]'``).
* :mod:`sse_np.integrations.llamaindex`: ``SSEEmbedding``, a LlamaIndex
  ``BaseEmbedding`` (``pip install 'sse_np[llamaindex]'``).

Nothing is imported here, so ``import sse_np`` never needs either framework.
"""
