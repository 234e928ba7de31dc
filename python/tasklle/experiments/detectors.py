"""Which frozen detector an experiment trains against, and which detectors judge it.

On the built-in data the default frozen downstream is the shipped
WIDER-FACE-pretrained RetinaFace (mobilenet0.25, ``retinaface-mobilenet0.25``),
and the shipped lite TinaFace (``tinaface-lite-demo``, trained on the built-in
composites) scores every group as a judge the enhancers never trained against;
``--detector tinaface-lite-demo`` swaps the two. Why this default (measured on
the built-in val split, 120 images, easy / medium / hard AP):

- the method's setting is a detector pretrained on real faces, frozen; under
  its darkening the report's TinaFace loses .023 / .031 / .045 (most on hard,
  small faces);
- the shipped RetinaFace at input scale 2 loses .004 / .068 / .087 on the dark
  copy (.866 / .821 / .619 -> .862 / .753 / .532; at scale 3 .006 / .041 /
  .090): a few points, most on hard, like the report;
- the lite TinaFace loses .31 / .29 / .30 (.706 / .850 / .894 -> .399 / .564 /
  .596): a third of its AP everywhere, nothing like the report's setting.

The RetinaFace runs at ``input_scale`` 2 on the built-in images (the loss and
``detect`` resize its input by 2 inside, differentiably): the built-in faces
are 8-120 px and its smallest anchor is 16 px. Measured on the original val
images: AP .778 / .485 / .314 at x1, .866 / .821 / .619 at x2, .898 / .868 /
.730 at x3, .900 / .877 / .751 at x4; on the dark copy .862 / .753 / .532 at x2
(a drop of .004 / .068 / .087, still the report's shape: least on easy, most
on hard). x3 scores higher, but its loss costs 0.20 s of a joint step (the
default budget with 192 crops: 1,000 joint steps took 362 s at x3 against
161 s for Zero-DCE++ alone, 11.6 min for the whole demo), which does not fit
the demo's 8 minutes; ``--detector-scale 3`` runs it.

The budgets' detection settings (``detect_scale``, ``score_thr``; see
:mod:`.budgets`) are the lite TinaFace's; the RetinaFace keeps biubug6's test
settings (score > 0.02, top 5000, NMS 0.4, keep 750).
"""
from ..models.shipped import DETECTORS

__all__ = ["BUILTIN_DEFAULT", "BUILTIN_INPUT_SCALE", "DETECTORS", "builtin_detectors", "load_with_scale",
           "set_input_scale"]

BUILTIN_DEFAULT = "retinaface-mobilenet0.25"
BUILTIN_INPUT_SCALE = {"retinaface-mobilenet0.25": 2.0, "tinaface-lite-demo": None}


def set_input_scale(det, input_scale=None, name="input_scale"):
    """``det`` with its ``input_scale`` set when one is given (a ValueError naming ``name``
    for a detector without one: only RetinaFace resizes its input)."""
    if input_scale is not None:
        if not hasattr(det, "input_scale"):
            raise ValueError(f"{name}: {type(det).__name__} has no input scale to set (only RetinaFace has)")
        det.input_scale = float(input_scale)
    return det


def load_with_scale(detector, input_scale=None, name="detector"):
    """``tasklle.models.load_detector(detector)`` with its ``input_scale`` set when given."""
    from ..models.shipped import load_detector

    return set_input_scale(load_detector(detector), input_scale, name)


def builtin_detectors(detector=None, budget_detect_kwargs=None, judges=True):
    """The frozen detector and the judges of a run on the built-in data.

    detector: a shipped name (default :data:`BUILTIN_DEFAULT`). budget_detect_kwargs:
    the budget's ``detect`` keyword arguments, which apply to the lite TinaFace.
    judges: True for the other shipped detector, False for none.

    Returns ``{'detector': name, 'input_scale': scale or None, 'detect_kwargs': dict,
    'judges': {name: (frozen module, detect kwargs)}}``.
    """
    name = BUILTIN_DEFAULT if detector is None else detector
    if name not in DETECTORS:
        raise ValueError(f"detector must be one of the shipped {DETECTORS} on the built-in data, got {name!r}")

    def kwargs(n):
        return dict(budget_detect_kwargs or {}) if n == "tinaface-lite-demo" else {}

    out = {"detector": name, "input_scale": BUILTIN_INPUT_SCALE[name], "detect_kwargs": kwargs(name), "judges": {}}
    if judges:
        for other in DETECTORS:
            if other != name:
                out["judges"][other] = (load_with_scale(other, BUILTIN_INPUT_SCALE[other], "judge"), kwargs(other))
    return out
