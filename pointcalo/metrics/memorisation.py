"""Memorisation check: are generated showers closer to the training showers than unseen
showers of the same simulation are?

Every shower is described by its standardised high-level features (those of the classifier
test, :meth:`Observables.feature_matrix`, plus ``log E_inc``; standardised with the training
set's mean and standard deviation). For each generated and each test shower the Euclidean
distance to its nearest training shower is found (scikit-learn's exact nearest neighbours).
A model that generalises puts its showers as far from the training set as the test showers
are (median ratio about 1); a model that copies (a shower library) sits much closer (ratio
well below 1) and has many showers closer to a training shower than any test shower is
(the test set's smallest distance), in the spirit of the data-copying tests of Meehan et al.,
arXiv 2004.05675.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pointcalo.metrics.observables import Observables


def memorisation_features(obs: Observables) -> np.ndarray:
    """``[N, F + 1]``: the classifier's high-level features and ``log E_inc``."""
    feats, _ = obs.feature_matrix()
    return np.concatenate([feats, np.log(obs.incident_energy)[:, None]], 1)


def nearest_distances(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``[M]`` Euclidean distance of each row of ``query`` to its nearest row of ``train``."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(train)
    return nn.kneighbors(query)[0][:, 0]


def memorisation(train: Observables, test: Observables, gen: Observables) -> dict[str, Any]:
    """Nearest-training-shower distances of generated and test showers.

    Returns ``median_ratio`` (median generated distance / median test distance),
    ``fraction_closer`` (generated showers closer to a training shower than the closest test
    shower is), the medians, and the distances themselves (``d_gen``, ``d_test``)."""
    f_train = memorisation_features(train)
    mean, std = f_train.mean(0), f_train.std(0)
    std = np.where(std > 0, std, 1.0)

    def z(f: np.ndarray) -> np.ndarray:
        return (f - mean) / std

    d_test = nearest_distances(z(f_train), z(memorisation_features(test)))
    d_gen = nearest_distances(z(f_train), z(memorisation_features(gen)))
    return {
        "median_ratio": float(np.median(d_gen) / max(np.median(d_test), 1e-12)),
        "fraction_closer": float(np.mean(d_gen < d_test.min())),
        "median_generated": float(np.median(d_gen)),
        "median_test": float(np.median(d_test)),
        "n_train": train.n_showers,
        "d_gen": d_gen,
        "d_test": d_test,
    }
