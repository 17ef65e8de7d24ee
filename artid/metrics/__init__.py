"""Metrics, below every package that scores: plain functions on NumPy arrays, no torch.

- :mod:`artid.metrics.ilr`: the Met benchmark's GAP, GAP-, ACC (instance-level recognition).
- :mod:`artid.metrics.bootstrap`: standard errors by bootstrap over queries, paired differences.
"""
