"""Classifier two-sample test: can a classifier tell generated from reference showers?

Gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) are trained on
high-level features (optionally on voxels) with balanced classes and stratified k-fold
cross-validation; the ROC AUC on the held-out folds is reported as (mean, std) over the folds.
0.5 means indistinguishable, 1.0 perfectly separated (as in the CaloChallenge evaluation,
Krause et al., arXiv 2410.21611).
"""

from __future__ import annotations

import numpy as np

from pointcalo.errors import PointcaloError


def classifier_auc(
    ref: np.ndarray,
    gen: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 200,
    limit: int | None = None,
) -> tuple[float, float]:
    """ROC AUC (mean, std over ``folds``) of a classifier separating ``gen [M, F]`` from
    ``ref [N, F]``; the larger sample is subsampled so the classes are balanced, and both to
    at most ``limit`` showers (so a floor of two large reference halves is measured with as
    many showers as the generated sample's test it is the floor of)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    ref, gen = np.asarray(ref, np.float64), np.asarray(gen, np.float64)
    if ref.ndim != 2 or gen.ndim != 2 or ref.shape[1] != gen.shape[1]:
        raise PointcaloError(f"classifier inputs must be [N, F] alike: {ref.shape} vs {gen.shape}")
    rng = np.random.default_rng(seed)
    n = min(len(ref), len(gen), limit or len(ref))
    if n < 5 * folds:
        raise PointcaloError(f"classifier test needs at least {5 * folds} showers per sample")
    ref = ref[rng.choice(len(ref), n, replace=False)]
    gen = gen[rng.choice(len(gen), n, replace=False)]
    x = np.concatenate([ref, gen])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    aucs = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y):
        clf = HistGradientBoostingClassifier(
            max_iter=max_iter, early_stopping=True, validation_fraction=0.2, random_state=seed
        )
        clf.fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], clf.predict_proba(x[test])[:, 1]))
    return float(np.mean(aucs)), float(np.std(aucs))
