"""Data: entries of the Met ground truth, folder collections, the synthetic benchmark, safe image loading."""
