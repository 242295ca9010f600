"""Analyses: compute only, return frames (drawing lives in research.plots)."""

from research.analysis.summary import outcome_summary

__all__ = ["outcome_summary"]
