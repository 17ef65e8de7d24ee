"""Retrieval: PCA-whitening, exact faiss search, the kNN classifier and its (k, tau) autotune. No torch here."""
