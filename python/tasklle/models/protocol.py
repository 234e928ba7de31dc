"""The detector protocol: what every part of tasklle may assume of a frozen detector.

Joint training (:func:`tasklle.train.joint`), :func:`tasklle.detect_split`, the
experiments and the command line take *any* object that follows this protocol;
TinaFace (:class:`tasklle.models.TinaFace`) and RetinaFace
(:class:`tasklle.models.RetinaFace`) do. This module is the one place the
protocol is written down; nothing else may be assumed.

``loss(images, targets) -> (total, parts)``
    images: (B, 3, H, W) float RGB in [0, 1] (any H, W: the detector pads or
    resizes inside). targets: a list of B dicts ``{'boxes': (N, 4) float
    x1 y1 x2 y2 in the images' pixels, 'ignore': (N,) bool}`` (ignored faces
    take no part in the matching; each detector documents how). Returns the
    detector's own training loss as a scalar tensor, differentiable in
    ``images``, and ``parts``: ``{name: scalar tensor}`` summing to it (the
    names are the detector's: TinaFace 'cls', 'reg', 'iou'; RetinaFace 'loc',
    'conf', 'landm'). A frozen detector's parameters receive no gradient.

``detect(images, **test_settings) -> [ (N, 5) arrays ]``
    images: a (B, 3, H, W) or (3, H, W) tensor in [0, 1] (or a list of
    images). Returns one float array per image of [x1, y1, x2, y2, score] in
    that image's own pixels, by descending score. ``test_settings`` are the
    detector's own, with the same defaults as its original test script; every
    detector accepts at least ``scale`` (a resize factor, None: its own test
    size) and ``score_thr`` (keep scores above it).

``freeze() -> self``
    Eval mode and ``requires_grad=False`` on every parameter.

Each detector keeps its own preprocessing (TinaFace: x * 255 - mean; RetinaFace:
BGR, x * 255 - (104, 117, 123)) inside ``forward``, its own checkpoint loader by
the original key names (``TinaFace.from_vedadet``, ``RetinaFace.from_biubug6``)
and its anchor matching through the C assignment op.
"""
from typing import Protocol, runtime_checkable

__all__ = ["Detector", "check_detector", "detector_key", "REQUIRED"]

REQUIRED = ("loss", "detect", "freeze")


@runtime_checkable
class Detector(Protocol):
    """A frozen face detector usable as L_down and as a judge (see the module docstring)."""

    def loss(self, images, targets):  # pragma: no cover - protocol
        ...

    def detect(self, images, **test_settings):  # pragma: no cover - protocol
        ...

    def freeze(self):  # pragma: no cover - protocol
        ...


def check_detector(detector, name="detector"):
    """``detector`` itself when it follows the protocol (callable ``loss``, ``detect`` and
    ``freeze``, and it is a torch module so its weights can be hashed and moved);
    otherwise a TypeError naming the argument and what is missing."""
    import torch

    missing = [m for m in REQUIRED if not callable(getattr(detector, m, None))]
    if missing:
        raise TypeError(f"{name} must follow the detector protocol (tasklle.models.protocol): "
                        f"{type(detector).__name__} has no {', '.join(missing)}")
    if not isinstance(detector, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module following the detector protocol, "
                        f"got {type(detector).__name__}")
    return detector



def detector_key(detector):
    """The identity of a frozen detector for caches and resume checks: the SHA-256 of its
    weights (``tasklle.io.state_dict_sha256``), with ``@x<input_scale>`` appended
    when the detector has an ``input_scale`` other than 1 (RetinaFace's: it changes what the
    loss and ``detect`` see without changing a weight, so results made at one scale must
    never be taken for another). For every other detector it is the hash itself, so keys
    made before input scales existed stay valid."""
    from ..io import state_dict_sha256

    sha = state_dict_sha256(detector)
    s = getattr(detector, "input_scale", 1.0)
    return sha if float(s) == 1.0 else f"{sha}@x{float(s):g}"


def detection_inputs(images, like):
    """The images of ``detect(images)`` one by one, as the protocol takes them:
    a (B, 3, H, W) tensor, a list/tuple of images, or one image (anything
    ``tasklle.io.to_tensor`` reads). Returns a list of (3, H, W) tensors on
    ``like``'s device and dtype (``like``: a parameter of the detector).
    ValueError naming ``images[i]`` for a batch where one image belongs."""
    import torch

    from ..io import to_tensor

    if isinstance(images, torch.Tensor) and images.dim() == 4:
        items = list(images)
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        items = [images]
    out = []
    for i, im in enumerate(items):
        t, _ = to_tensor(im, name=f"images[{i}]")
        if t.shape[0] != 1:
            raise ValueError(f"images[{i}]: expected one image, got a batch of {t.shape[0]}")
        out.append(t[0].to(device=like.device, dtype=like.dtype))
    return out


def equal_size_runs(sizes, batch_size):
    """(i, j) ranges of consecutive equal entries of ``sizes``, at most
    ``batch_size`` long: the images ``detect`` runs through the network together
    (padding unequal sizes together would change what the network sees)."""
    i = 0
    while i < len(sizes):
        j = i + 1
        while j < len(sizes) and j - i < batch_size and sizes[j] == sizes[i]:
            j += 1
        yield i, j
        i = j
