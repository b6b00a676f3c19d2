"""A verdict in words for each sample of a comparison (:func:`.compare.compare_views`): is it
separated from the reference by the per-layer classifier on its worst view, which observables
are within twice their floor (Geant4 against itself), which is furthest from it.

Rules, with the excess of a sample's worst-view AUC over the floor's AUC on that view and its
uncertainty (the two AUCs' fold-to-fold spreads combined, over the square root of the number
of folds): *separated* when the excess is above 0.10 by more than twice the uncertainty; no
verdict (*unresolved*) when twice the uncertainty exceeds 0.05 (too few showers to resolve
0.05 in AUC); else *indistinguishable* when the excess is within twice the uncertainty,
*close* when it is at most 0.10, else *separated*. An observable is *within the floor* when
its W1 over the floor's W1 is at most 2 on every view (the floor itself fluctuates between
batches by about that).
"""

from __future__ import annotations

import math
from typing import Any

#: An observable whose W1 is at most this multiple of its floor on every view is "within".
WITHIN = 2.0
#: A worst-view AUC at most this far above the floor is "close" rather than "separated".
CLOSE = 0.10
#: No verdict when twice the combined AUC uncertainty exceeds this (too few showers).
RESOLVE = 0.05
#: A memorisation ratio below this says the sample copies training showers.
COPIES = 0.5
#: The classifier's folds (:func:`.classifier.classifier_auc`): its AUC is their mean.
FOLDS = 5


def verdict(result: dict[str, Any], label: str, reference: str = "the reference") -> dict[str, Any]:
    """The verdict on sample ``label`` of a :func:`compare_views` result: ``status``
    (indistinguishable / close / separated / unresolved), the AUC and the floor on the worst
    view, the observables within and beyond their floor (worst ratio over views) and a
    sentence."""
    h = result["headline"][label]
    view = h["worst_view"]
    auc, err = h["classifier_auc_worst"]
    floor, ferr = result["floor"][view]["classifier_auc"]
    # the AUCs are (mean, std over the classifier's folds): the mean's error is std / sqrt(folds)
    excess, sigma = auc - floor, math.hypot(err, ferr) / math.sqrt(FOLDS)
    if excess - 2 * sigma > CLOSE:
        status = "separated"
    elif 2 * sigma > RESOLVE:
        status = "unresolved"
    elif excess <= 2 * sigma:
        status = "indistinguishable"
    elif excess <= CLOSE:
        status = "close"
    else:
        status = "separated"
    worst: dict[str, float] = {}
    for r in result["by_view"].values():
        for name, ratio in r["samples"].get(label, {}).get("w1_over_floor", {}).items():
            if math.isfinite(ratio):
                worst[name] = max(worst.get(name, 0.0), ratio)
    within = sorted(k for k, v in worst.items() if v <= WITHIN)
    beyond = sorted((k for k, v in worst.items() if v > WITHIN), key=lambda k: -worst[k])
    w = h["worst_w1_over_floor"]
    words = {
        "indistinguishable": f"indistinguishable from {reference}",
        "close": f"close to {reference}",
        "separated": f"separated from {reference}",
        "unresolved": f"not resolved against {reference} (too few showers for a verdict)",
    }[status]
    text = (
        f"{label}: {words} by the per-layer classifier (AUC {auc:.3f} ± {err:.3f} on its worst "
        f"view '{view}'; {reference} against itself {floor:.3f} ± {ferr:.3f}). "
        f"Within {WITHIN:g}x their floor on every view: {', '.join(within) or 'none'}. "
    )
    if beyond:
        text += (
            f"Beyond it: {', '.join(f'{k} ({worst[k]:.1f}x)' for k in beyond)}; furthest "
            f"{w['observable']} ({w['value']:.1f}x on '{w['view']}')."
        )
    memo = h.get("memorisation_ratio")
    if memo is not None and memo < COPIES:
        text += (
            f" It copies its training showers (memorisation ratio {memo:.2f}: distance to the "
            "nearest training shower, generated over reference)."
        )
    return {
        "status": status,
        "auc": [auc, err],
        "floor": [floor, ferr],
        "view": view,
        "within": within,
        "beyond": {k: worst[k] for k in beyond},
        "text": text,
    }
