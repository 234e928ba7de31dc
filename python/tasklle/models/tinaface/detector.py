"""TinaFace (Zhu et al. 2020, "TinaFace: Strong but Simple Baseline for Face
Detection"), as released in vedadet's ``tinaface_r50_fpn_gn_dcn`` config:
ResNet-50 + GN + DCN, FPN with 6 outputs, a shared Inception
neck, an IoU-aware RetinaNet head, focal + DIoU + IoU-BCE loss.

``TinaFace()`` is that configuration number for number; ``TinaFace.lite()``
has the same parts, smaller (for 2 CPU cores). The configuration is stored in
our checkpoints, so ``TinaFace.load(path)`` rebuilds the right network.

Images enter every public method as float (B, 3, H, W) RGB in [0, 1]; the
model does its own normalisation (x * 255 - mean, std 1) and zero-pads the
normalised images bottom/right to a multiple of 32 (mmdet pads after
normalising).
"""
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..._checks import check_images
from ..protocol import detection_inputs, equal_size_runs
from ...io import load_checkpoint, save_checkpoint
from .._state_dict import load_strict, read_state_dict
from . import postprocess as pp
from .anchors import AnchorGenerator
from .fpn import FPN
from .head import IoUAwareHead
from .loss import flatten_outputs, tinaface_loss
from .neck import Inception
from .resnet import ResNet

MEAN = (123.675, 116.28, 103.53)
STD = (1.0, 1.0, 1.0)
SIZE_DIVISOR = 32
CHECKPOINT_FORMAT = "tasklle-tinaface"

FULL_CONFIG = {
    # backbone: ResNet-50, GN(32), DCN in layer3/4
    "stem_channels": 64,
    "planes": [64, 128, 256, 512],
    "blocks": [3, 4, 6, 3],
    "expansion": 4,
    "dcn_stages": [False, False, True, True],
    "backbone_gn_groups": 32,
    # FPN / Inception neck / head
    "fpn_channels": 256,
    "num_outs": 6,
    "gn_groups": 32,
    "head_channels": 256,
    "stacked_convs": 4,
    # anchors
    "strides": [4, 8, 16, 32, 64, 128],
    "octave_base_scale": 2 ** (4 / 3),
    "scales_per_octave": 3,
    "ratios": [1.3],
    # test pipeline: keep-ratio resize target (short_max, long_max)
    "test_scale": [1100, 1650],
}

# Same parts, about 1/150 of the compute: narrow bottlenecks (expansion 2, one
# block per stage, stage outputs 16/32/64/128 channels), 32-channel FPN, neck
# and head with 2 stacked convs, DCN still in layer3/4. The smaller test scale
# suits the built-in demo images (256-384 px).
LITE_CONFIG = dict(FULL_CONFIG, **{
    "stem_channels": 16,
    "planes": [8, 16, 32, 64],
    "blocks": [1, 1, 1, 1],
    "expansion": 2,
    "backbone_gn_groups": 4,
    "fpn_channels": 32,
    "gn_groups": 4,
    "head_channels": 32,
    "stacked_convs": 2,
    "test_scale": [640, 960],
})


def _plain(v):
    """Config values as plain lists / numbers (safe for weights_only loading and JSON)."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _check_config(cfg):
    unknown = set(cfg) - set(FULL_CONFIG)
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}")
    if len(cfg["strides"]) != cfg["num_outs"]:
        raise ValueError(f"config: {len(cfg['strides'])} strides for {cfg['num_outs']} pyramid levels")
    if list(cfg["strides"][:4]) != [4, 8, 16, 32] or any(
            b != 2 * a for a, b in zip(cfg["strides"], cfg["strides"][1:])):
        raise ValueError(f"config: strides must be 4, 8, 16, 32, ... doubling, got {cfg['strides']}")


class TinaFace(nn.Module):
    """TinaFace detector.

    Attributes named as in vedadet checkpoints: ``backbone`` (ResNet),
    ``neck`` (ModuleList [FPN, Inception]), ``bbox_head`` (IoU-aware head).

    ``forward(images)`` -> (cls_scores, bbox_preds, iou_preds): lists over the
    6 levels of (B, A, h, w), (B, 4A, h, w), (B, A, h, w) raw outputs for
    images (B, 3, H, W) in [0, 1] (normalised and padded inside).
    """

    def __init__(self, config=None, **overrides):
        super().__init__()
        cfg = copy.deepcopy(FULL_CONFIG)
        if config is not None:
            if not isinstance(config, dict):
                raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
            cfg.update(copy.deepcopy(config))
        cfg.update(overrides)
        _check_config(cfg)
        self.config = {k: _plain(v) for k, v in cfg.items()}
        c = self.config
        self.backbone = ResNet(c["stem_channels"], tuple(c["planes"]), tuple(c["blocks"]), c["expansion"],
                               c["backbone_gn_groups"], tuple(bool(x) for x in c["dcn_stages"]))
        self.anchor_generator = AnchorGenerator(c["strides"], c["octave_base_scale"], c["scales_per_octave"],
                                                c["ratios"])
        A = self.anchor_generator.num_anchors
        self.neck = nn.ModuleList([
            FPN(self.backbone.out_channels, c["fpn_channels"], c["num_outs"], c["gn_groups"]),
            Inception(c["fpn_channels"], c["gn_groups"]),
        ])
        self.bbox_head = IoUAwareHead(c["fpn_channels"], c["head_channels"], c["stacked_convs"], A, c["gn_groups"])
        self.register_buffer("pixel_mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ build
    @classmethod
    def lite(cls, **overrides):
        """The small configuration (LITE_CONFIG) with optional overrides."""
        return cls(LITE_CONFIG, **overrides)

    @classmethod
    def full(cls, **overrides):
        return cls(FULL_CONFIG, **overrides)

    @classmethod
    def shipped(cls):
        """The lite detector shipped with tasklle (trained on the built-in data), frozen, eval
        mode, on the CPU (``tasklle.models.load_shipped('tinaface-lite-demo')``)."""
        from ..shipped_files import shipped_path

        det = cls.load(shipped_path("tinaface-lite-demo"))
        det.freeze()
        return det.eval()

    # ---------------------------------------------------------------- forward
    def preprocess(self, images):
        """(B, 3, H, W) in [0, 1] -> normalised (x * 255 - mean) / std, zero-padded
        bottom/right to a multiple of 32. Differentiable in images."""
        check_images(images, "images")
        x = (images * 255.0 - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)
        H, W = x.shape[-2:]
        ph = (-H) % SIZE_DIVISOR
        pw = (-W) % SIZE_DIVISOR
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph))
        return x

    def forward(self, images):
        x = self.preprocess(images)
        feats = self.backbone(x)
        feats = self.neck[1](self.neck[0](feats))
        return self.bbox_head(feats)

    def anchors(self, outputs):
        """(N, 4) anchors for head outputs (as returned by forward), all levels concatenated."""
        cls_scores = outputs[0]
        sizes = [c.shape[-2:] for c in cls_scores]
        return torch.cat(self.anchor_generator.gen(sizes, cls_scores[0].dtype, cls_scores[0].device))

    # ------------------------------------------------------------------- loss
    def loss(self, images, targets, num_pos_reduce=None):
        """Training loss of a batch.

        Args:
            images: (B, 3, H, W) float in [0, 1] (any H, W; padded inside).
            targets: list of B dicts {'boxes': (N, 4) float x1 y1 x2 y2 pixels,
                'ignore': (N,) bool (optional)}; ignored boxes take no part in
                the assignment.
            num_pos_reduce: optional callable for distributed training (see
                ``tasklle.models.tinaface.loss``).

        Returns:
            (total, parts): scalar tensor and {'cls', 'reg', 'iou'} (weighted,
            summing to total). On a frozen detector the gradient of total
            reaches ``images`` and no parameter.
        """
        return self.loss_from_outputs(self(images), targets, num_pos_reduce)[:2]

    def loss_from_outputs(self, outputs, targets, num_pos_reduce=None):
        """(total, parts, num_pos) from the outputs of ``forward`` (used by DDP
        training, where forward runs through the DistributedDataParallel wrapper)."""
        cls, reg, iou = flatten_outputs(*outputs)
        return tinaface_loss(cls, reg, iou, self.anchors(outputs), targets, num_pos_reduce)

    def freeze(self):
        """Eval mode and requires_grad False on every parameter (for use as a
        fixed loss: gradients still flow to the input images, and no weight
        gradient is computed), weights in channels-last (torch then runs every
        convolution and its input gradient channels-last, whatever the input's
        layout: 14% less CPU time for the lite model's loss forward+backward at
        4x3x192x192, ``benchmarks/bench_dcenet.py``). Returns self."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self.to(memory_format=torch.channels_last)

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def detect(self, images, score_thr=pp.SCORE_THR, nms_thr=pp.NMS_THR, resize=True, scale=None,
               test_scale=None, min_height=pp.MIN_HEIGHT, batch_size=1):
        """Detect faces (the vedadet test pipeline, see ``postprocess``).

        Args:
            images: a (3, H, W) or (B, 3, H, W) float tensor in [0, 1], or a
                list of images of any sizes (tensors, NumPy arrays, PIL images
                or paths, as ``tasklle.io.to_tensor`` accepts).
            score_thr: keep score > score_thr. nms_thr: NMS IoU threshold.
            resize: keep-ratio resize to ``test_scale`` (default: the
                config's, (1100, 1650) for the full model). False: run at the
                given size. scale: a float factor instead (overrides both).
            min_height: drop boxes shorter than this in the original image.
            batch_size: images of equal resized size are run together up to
                this many (padding differing sizes together would change
                GroupNorm statistics, so unequal sizes run separately).

        Returns:
            list with one (N, 5) float32 NumPy array [x1, y1, x2, y2, score]
            per image, in that image's pixels, by descending score.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if scale is not None and (not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        ts = tuple(test_scale) if test_scale is not None else tuple(self.config["test_scale"])
        prepared = []
        for t in detection_inputs(images, next(self.parameters())):
            h, w = t.shape[-2:]
            if scale is not None:
                nh, nw = max(int(h * scale + 0.5), 1), max(int(w * scale + 0.5), 1)
            elif resize:
                nh, nw = pp.rescale_size(h, w, ts)
            else:
                nh, nw = h, w
            prepared.append((pp.resize(t, (nh, nw)), (nh, nw), (nw / w, nh / h)))
        results = [None] * len(prepared)
        for i, j in equal_size_runs([p[1] for p in prepared], batch_size):
            batch = torch.stack([p[0] for p in prepared[i:j]])
            outputs = self(batch)
            anchors = self.anchors(outputs)
            cls, reg, iou = flatten_outputs(*outputs)
            for k in range(j - i):
                _, shape, sf = prepared[i + k]
                results[i + k] = pp.postprocess_single(cls[k], reg[k], iou[k], anchors, shape, sf, score_thr,
                                                       nms_thr, min_height)
        return results

    # ------------------------------------------------------------ checkpoints
    def save(self, path, **extra):
        """Save config + weights atomically (``TinaFace.load`` reads it back)."""
        state = {"format": CHECKPOINT_FORMAT, "version": 1, "config": self.config,
                 "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()}}
        state.update(extra)
        save_checkpoint(path, state)

    @classmethod
    def load(cls, path, map_location="cpu"):
        """Rebuild a detector saved by ``save`` (or a training checkpoint of
        ``tasklle.train.train_detector``)."""
        ckpt = load_checkpoint(path, map_location=map_location)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a tasklle TinaFace checkpoint (use TinaFace.from_vedadet for vedadet "
                             f"state_dicts)")
        model = cls(ckpt["config"])
        load_strict(model, ckpt["state_dict"], str(path))
        return model

    @classmethod
    def from_vedadet(cls, path, config=None, map_location="cpu"):
        """Load a vedadet tinaface_r50_fpn_gn_dcn checkpoint by key name:
        a plain state_dict or a dict holding one under
        'state_dict'; any ``module.`` prefix is stripped. Strict: a ValueError
        lists missing and unexpected keys and shape mismatches."""
        sd = read_state_dict(path, map_location=map_location)
        model = cls(config)
        load_strict(model, sd, str(path))
        return model


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


__all__ = ["TinaFace", "FULL_CONFIG", "LITE_CONFIG", "count_parameters"]
