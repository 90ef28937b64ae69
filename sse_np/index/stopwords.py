"""English stopwords left out of BM25: Lucene's English stop set (the list ``bm25s`` uses for "en")."""

ENGLISH_STOPWORDS = (
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with"
).split()
