"""Data: Met ground-truth entries, folder collections, the synthetic benchmark, safe image reads."""
