"""Pieces shared by DCE-Net (Zero-DCE) and DCE-Net++ (Zero-DCE++): weight
init and loading official / tasklle checkpoints. (Which path the C-backed ops
take is the ops' own rule, ``tasklle.ops._common.use_c``: the models pass their
``impl`` through.)"""
import numbers

import torch
from torch import nn


def add_dce_layers(module, layer, cin, c, cout):
    """Register DCE-Net's seven layers as ``module.e_conv1`` .. ``e_conv7`` (the
    official key names), in that order: conv1 cin -> c, conv2-4 c -> c,
    conv5-7 read the symmetric skip concatenations (2c channels), conv7
    outputs ``cout``. ``layer(in_channels, out_channels)`` builds one layer."""
    widths = [(cin, c), (c, c), (c, c), (c, c), (2 * c, c), (2 * c, c), (2 * c, cout)]
    for k, (i, o) in enumerate(widths, 1):
        setattr(module, f"e_conv{k}", layer(i, o))


def init_conv_weights(module, std):
    """Conv weights ~ N(0, std), biases keep PyTorch's default init. This is the
    method's (the report's) init and the original Zero-DCE script's
    ``weights_init``; the official Zero-DCE++ script has that call commented
    out and trains from PyTorch's default init."""
    if isinstance(std, bool) or not isinstance(std, numbers.Real) or not std >= 0:
        raise ValueError(f"std must be a number >= 0, got {std!r}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, float(std))
    return module


def _strip_prefix(state):
    """Checkpoints saved from nn.DataParallel carry a 'module.' prefix."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_state_strict(model, state, source):
    """Load ``state`` into ``model`` by key name; on any mismatch raise ValueError
    listing the missing and unexpected keys and shape differences."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source}: expected a state_dict (a dict of tensors)")
    state = _strip_prefix(state)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append("missing keys: " + ", ".join(missing))
        if unexpected:
            parts.append("unexpected keys: " + ", ".join(unexpected))
        if shapes:
            parts.append("shape mismatch: " + "; ".join(shapes))
        raise ValueError(f"{source} does not match {type(model).__name__}: " + " | ".join(parts))
    model.load_state_dict(state, strict=True)
    return model


def save_model(model, path, fmt, **extra):
    """Write ``{'format': fmt, 'kind': class name, **extra, 'model': state_dict}``
    atomically (loadable with ``weights_only=True``): the file ``read_checkpoint``
    and the classes' ``load`` read. Returns ``path``."""
    from ..io import save_checkpoint

    save_checkpoint(path, {"format": fmt, "kind": type(model).__name__, **extra, "model": model.state_dict()})
    return path


def read_checkpoint(path):
    """(state_dict, metadata dict) from an official state_dict file or a tasklle
    checkpoint ``{'format', 'kind', 'model': state_dict, ...}``."""
    from ..io import load_checkpoint

    ckpt = load_checkpoint(path)  # weights_only=True; FileNotFoundError / ValueError
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a dict, got {type(ckpt).__name__}")
    for key in ("model", "state_dict"):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key], {k: v for k, v in ckpt.items() if k != key}
    return ckpt, {}
