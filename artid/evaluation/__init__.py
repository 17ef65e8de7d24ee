"""Evaluation: the Met benchmark's metrics, the evaluation run and its report. No torch here."""
