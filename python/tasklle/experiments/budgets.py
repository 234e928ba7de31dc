"""Run sizes of the built-in experiments, the demo and the notebooks: ``budget(name)``."""

# Run sizes for the built-in data (the demo and the notebooks). Step counts are
# fixed, never derived from measured speed, so the same seed gives the same
# table on any machine. Wall time of `tasklle demo` on 2 CPU cores, fresh
# cache: tiny < 1 min (smoke test), small ~2 min, default <= 8 min (1,000
# steps per enhancer; README, "What the demo gives" has the measured run),
# long ~40 min. The default crop is 160 (192 before the frozen RetinaFace
# became the demo's default): with 192 crops and the RetinaFace at input scale 3
# the default run measured 11.6 min (experiments/detectors.py).
# default and long use the method's lr 1e-4: at 1,000 steps it gave higher AP
# for both enhancers than lr 1e-3 (README, "What the demo gives"). tiny and
# small train too few steps for 1e-4 to move a Zero-DCE++ from N(0, 0.02),
# so they use 1e-3. A run on a given --root uses the method's settings (1e-4,
# 640 crops, batch 4) for --epochs passes over its train split
# (commands/experiment.py: 10 by default).
# Every run uses the method's optimiser (Adam, no weight decay, no clipping).
BUDGETS = {
    "tiny": dict(steps=3, image_size=96, batch_size=2, lr=1e-3, max_val=6, figure_images=2, n_train=8, n_val=6,
                 detect_scale=1.0, score_thr=0.05, darken_workers=1),
    "small": dict(steps=60, image_size=160, batch_size=4, lr=1e-3, max_val=40, figure_images=3, n_train=None,
                  n_val=None, detect_scale=None, score_thr=0.05, darken_workers=None),
    "default": dict(steps=1000, image_size=160, batch_size=4, lr=1e-4, max_val=None, figure_images=4, n_train=None,
                    n_val=None, detect_scale=None, score_thr=0.05, darken_workers=None),
    "long": dict(steps=3000, image_size=256, batch_size=4, lr=1e-4, max_val=None, figure_images=4, n_train=None,
                 n_val=None, detect_scale=None, score_thr=0.05, darken_workers=None),
}


def budget(name):
    """The run size ``name`` (one of 'tiny', 'small', 'default', 'long') as a new dict.

    Keys: ``steps`` (optimiser steps per enhancer), ``image_size`` (training crop
    side), ``batch_size``, ``lr``, ``max_val`` (val images detected; None: all),
    ``figure_images``, ``n_train`` / ``n_val`` (built-in dataset size; None: its
    default 240 / 120), ``detect_scale`` / ``score_thr`` (for
    :func:`tasklle.detect_split`; None: the detector's own) and
    ``darken_workers``.

    Example:
        >>> tasklle.experiments.budget("tiny")["steps"]
        3
    """
    if name not in BUDGETS:
        raise ValueError(f"budget must be one of {sorted(BUDGETS)}, got {name!r}")
    return dict(BUDGETS[name])
