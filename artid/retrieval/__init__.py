"""Retrieval: PCA-whitening, exact faiss search, the kNN classifier and its (k, tau) autotune,
the IVF index, QE / DBA, re-ranking, and the pipeline that holds them. No torch here."""
