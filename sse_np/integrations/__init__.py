"""Adapters for retrieval frameworks (optional extras).

* :mod:`sse_np.integrations.langchain`: ``SSEEmbeddings``, a LangChain
  ``Embeddings`` (the ``langchain`` extra).
* :mod:`sse_np.integrations.llamaindex`: ``SSEEmbedding``, a LlamaIndex
  ``BaseEmbedding`` (the ``llamaindex`` extra).
* :mod:`sse_np.integrations.chroma`: ``SSEEmbeddingFunction``, a registered Chroma
  ``EmbeddingFunction`` (the ``chroma`` extra).
* :mod:`sse_np.integrations.lancedb`: ``"sse-np"`` in LanceDB's embedding registry (the ``lancedb`` extra).
* :mod:`sse_np.integrations.qdrant`: ``SSEQdrant``, named Matryoshka vectors in a Qdrant collection
  (the ``qdrant`` extra).
* :mod:`sse_np.integrations.haystack`: ``SSETextEmbedder`` and ``SSEDocumentEmbedder`` Haystack
  components (the ``haystack`` extra).

Nothing is imported here, so ``import sse_np`` never needs any of them.
"""
