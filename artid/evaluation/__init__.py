"""Evaluation: the evaluation run and its report. No torch here."""
