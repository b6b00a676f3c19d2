"""Metrics: physics observables on a grid, distances with uncertainties beside their
reference floor, a classifier two-sample test, and the evaluation report.

Every distance returns ``(value, uncertainty)`` and takes an explicit seed.
"""

from __future__ import annotations

from pointcalo.metrics.classifier import classifier_auc
from pointcalo.metrics.distances import fpd, kpd, separation_power, w1
from pointcalo.metrics.observables import Observables, compute
from pointcalo.metrics.report import evaluate, load_observables

__all__ = [
    "Observables",
    "classifier_auc",
    "compute",
    "evaluate",
    "fpd",
    "kpd",
    "load_observables",
    "separation_power",
    "w1",
]
