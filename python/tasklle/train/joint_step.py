"""One step of joint training (``joint``'s model and step; the loop is in :mod:`.joint`).

``joint_losses`` is the forward of a step (L_total = W_up L_up + W_down * r *
L_down); ``Step`` adds the backward, the gradient norm (clipped or measured)
and the update, averaging the logged values over processes;
``RunningRatio`` is the 'running-ratio' normaliser r.
"""
import inspect
import math

import torch

from ..losses.zero_dce_loss import zero_dce_loss
from .joint_log import DOWN_PARTS
from .run import all_mean, positive_count_reduce


class RunningRatio:
    """Detached running ratio ``r = EMA(L_up) / EMA(L_down)`` (bias-corrected).

    ``update(l_up, l_down)`` folds in the current values (floats) and returns
    ``r``. ``state_dict`` / ``load_state_dict`` make it resumable.
    """

    def __init__(self, decay=0.99, eps=1e-12):
        if not (0.0 <= decay < 1.0):
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.eps = float(eps)
        self.up = 0.0
        self.down = 0.0
        self.count = 0

    def update(self, l_up, l_down):
        if not (math.isfinite(l_up) and math.isfinite(l_down)):
            return self.value()  # a non-finite step must not poison the average
        d = self.decay
        self.up = d * self.up + (1 - d) * float(l_up)
        self.down = d * self.down + (1 - d) * float(l_down)
        self.count += 1
        return self.value()

    def value(self):
        if self.count == 0:
            return 1.0
        corr = 1.0 - self.decay ** self.count  # the same correction cancels in the ratio, kept for clarity
        up, down = self.up / corr, self.down / corr
        return up / max(down, self.eps)

    def state_dict(self):
        return {"decay": self.decay, "up": self.up, "down": self.down, "count": self.count}

    def load_state_dict(self, state):
        self.decay = float(state["decay"])
        self.up = float(state["up"])
        self.down = float(state["down"])
        self.count = int(state["count"])


def joint_losses(model, detector, images, targets, w_up=1.0, w_down=0.5, exposure=0.6, ratio=1.0,
                 loss_kwargs=None):
    """Forward pass of one joint-training step (no backward, no update).

    images: (B, 3, H, W) low-light inputs in [0, 1]; targets: B dicts with
    'boxes' (N, 4) and 'ignore' (N,). ``ratio`` multiplies L_down (the
    normaliser's r; 1 for 'none'). The detector is skipped when ``w_down == 0``.
    ``loss_kwargs`` go to ``detector.loss`` (e.g. TinaFace's ``num_pos_reduce``
    under DDP).

    Returns ``(l_total, record)``: the scalar tensor to backpropagate and a dict
    of detached floats (l_up and its terms spa/exp/col/tv, l_down and its parts
    parts (``joint_log.DOWN_PARTS``: TinaFace's cls/reg/iou or RetinaFace's
    loc/conf/landm; NaN when skipped or not the detector's), l_total), plus the raw ``l_up`` / ``l_down``
    tensors under ``'_l_up'`` / ``'_l_down'``.
    """
    enhanced, curve_maps = model(images)
    l_up, terms = zero_dce_loss(enhanced, images, curve_maps, exposure=exposure)
    rec = {"l_up": float(l_up.detach()), **{k: float(terms[k].detach()) for k in ("spa", "exp", "col", "tv")}}
    l_total = w_up * l_up
    if w_down > 0:
        l_down, parts = detector.loss(enhanced, targets, **(loss_kwargs or {}))
        rec["l_down"] = float(l_down.detach())
        for k in DOWN_PARTS:
            rec[k] = float(parts[k].detach()) if k in parts else float("nan")
        l_total = l_total + (w_down * ratio) * l_down
    else:
        l_down = None
        rec.update({"l_down": float("nan"), **{k: float("nan") for k in DOWN_PARTS}})
    rec["l_total"] = float(l_total.detach())
    rec["_l_up"], rec["_l_down"] = l_up, l_down
    return l_total, rec


# --------------------------------------------------------------------------- logging


class Step:
    """One optimiser step of joint training on a batch; returns the step's log row
    (values averaged over processes)."""

    KEYS = ("l_total", "l_up", "spa", "exp", "col", "tv", "l_down", *DOWN_PARTS)

    def __init__(self, model, det, opt, world, device, w_up, w_down, exposure, grad_clip, normaliser):
        self.model, self.det, self.opt, self.world, self.device = model, det, opt, world, device
        self.w_up, self.w_down, self.exposure, self.grad_clip = w_up, w_down, exposure, grad_clip
        self.normaliser = normaliser
        self.ddp_model = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.loss_kwargs = None
        if det is not None and world > 1 and "num_pos_reduce" in inspect.signature(det.loss).parameters:
            self.loss_kwargs = {"num_pos_reduce": positive_count_reduce(device, world)}

    def __call__(self, images, targets, step):
        device, norm = self.device, self.normaliser
        images = images.to(device)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        self.opt.zero_grad(set_to_none=True)
        ratio = norm.value() if norm is not None else 1.0
        if norm is not None and self.w_down > 0:
            # r includes this step's values: compute the losses first, then scale.
            l_total, rec = joint_losses(self.ddp_model, self.det, images, targets, self.w_up, self.w_down,
                                        self.exposure, 1.0, self.loss_kwargs)
            up, down = all_mean([rec["l_up"], rec["l_down"]], device, self.world)
            ratio = norm.update(up, down)
            l_total = self.w_up * rec["_l_up"] + (self.w_down * ratio) * rec["_l_down"]
            rec["l_total"] = float(l_total.detach())
        else:
            l_total, rec = joint_losses(self.ddp_model, self.det, images, targets, self.w_up, self.w_down,
                                        self.exposure, ratio, self.loss_kwargs)
        if not torch.isfinite(l_total):
            raise FloatingPointError(f"step {step}: L_total is {float(l_total)}; lower lr or check the data")
        l_total.backward()
        params = self.model.parameters()
        if self.grad_clip is not None:
            gn = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        else:
            gn = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        self.opt.step()
        row = dict(zip(self.KEYS, all_mean([rec[k] for k in self.KEYS], device, self.world)))
        row.update(ratio=float(ratio), grad_norm=float(gn))
        return row
