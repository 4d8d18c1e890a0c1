"""Evaluation: identity, expression and flicker figures for a merged shot."""
