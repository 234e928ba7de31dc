"""Test pipeline of TinaFace (vedadet val pipeline + ``IoUBBoxAnchorConverter``
with alpha 0.4 and height_th 9, then ``multiclass_nms``).

Per image of size (h, w):
1. keep-ratio resize (mmcv ``imrescale``): scale = min(long_max / max(h, w),
   short_max / min(h, w)) with ``test_scale = (short_max, long_max)``
   (default (1100, 1650)); new size = int(w * scale + 0.5) x int(h * scale + 0.5),
   bilinear; the per-axis scale factors are new_w / w and new_h / h;
2. normalise, pad bottom/right with zeros to a multiple of 32 (inside the model);
3. score = sigmoid(cls)^0.8 * sigmoid(iou)^1.2 (vedadet: cls^(2*alpha) *
   iou^(2*(1-alpha)), alpha 0.4); boxes decoded and clipped to the resized
   image (not the padding);
4. keep boxes with 1 <= sqrt(w * h) <= 10000 (resized pixels);
5. map back to the original image (divide by the scale factors) and drop boxes
   whose height is below ``min_height`` (9) there;
6. keep score > score_thr (0.01), NMS with IoU > nms_thr (0.45) suppressing,
   no cap per image; output sorted by descending score.
"""
import numpy as np
import torch
import torch.nn.functional as F

from ... import ops
from . import coder

TEST_SCALE = (1100, 1650)
SCORE_THR = 0.01
NMS_THR = 0.45
MIN_HEIGHT = 9.0
CLS_POWER, IOU_POWER = 0.8, 1.2


def rescale_size(h, w, test_scale=TEST_SCALE):
    """mmcv ``rescale_size`` with keep_ratio: returns (new_h, new_w)."""
    if len(test_scale) != 2 or min(test_scale) <= 0:
        raise ValueError(f"test_scale must be two positive numbers, got {test_scale!r}")
    long_max, short_max = max(test_scale), min(test_scale)
    scale = min(long_max / max(h, w), short_max / min(h, w))
    return max(int(h * scale + 0.5), 1), max(int(w * scale + 0.5), 1)


def resize(image, size):
    """(3, h, w) or (B, 3, h, w) -> bilinear resize to size=(H, W) (half-pixel
    centres, no antialiasing: cv2 INTER_LINEAR's geometry)."""
    squeeze = image.dim() == 3
    x = image[None] if squeeze else image
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    return x[0] if squeeze else x


def postprocess_single(cls, reg, iou, anchors, img_shape, scale_factor, score_thr=SCORE_THR, nms_thr=NMS_THR,
                       min_height=MIN_HEIGHT):
    """Detections of one image from flattened outputs.

    cls, iou: (N,) logits; reg: (N, 4) deltas; anchors: (N, 4);
    img_shape: (h, w) of the resized (unpadded) image; scale_factor: (sx, sy)
    from original to resized pixels. Returns an (K, 5) float32 numpy array
    [x1, y1, x2, y2, score] in original-image pixels, by descending score.
    """
    scores = cls.sigmoid().pow(CLS_POWER) * iou.sigmoid().pow(IOU_POWER)
    boxes = coder.decode(anchors, reg, max_shape=img_shape)
    wh = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    size = wh.clamp(min=0).sqrt()
    keep = (size >= 1) & (size <= 10000)
    sx, sy = scale_factor
    boxes = boxes[keep] / boxes.new_tensor([sx, sy, sx, sy])
    scores = scores[keep]
    keep = (boxes[:, 3] - boxes[:, 1]) >= min_height
    keep &= scores > score_thr
    boxes, scores = boxes[keep], scores[keep]
    if boxes.shape[0] == 0:
        return np.zeros((0, 5), dtype=np.float32)
    order = ops.nms(boxes, scores, nms_thr)
    out = torch.cat([boxes[order], scores[order, None]], dim=1)
    return out.detach().cpu().numpy().astype(np.float32)


def detections_to_wider(dets):
    """(K, 5) [x1, y1, x2, y2, score] -> (K, 5) float64 [x, y, w, h, score], the
    row format of WIDER prediction files (``tasklle.data.wider_format.write_predictions``)."""
    d = np.asarray(dets, dtype=np.float64)
    if d.size == 0:
        return np.zeros((0, 5), dtype=np.float64)
    if d.ndim != 2 or d.shape[1] != 5:
        raise ValueError(f"dets must be (K, 5), got {d.shape}")
    out = d.copy()
    out[:, 2] = d[:, 2] - d[:, 0]
    out[:, 3] = d[:, 3] - d[:, 1]
    return out
