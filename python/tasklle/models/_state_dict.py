"""Reading third-party state dicts and loading them strictly by key name
(shared by ``TinaFace.from_vedadet`` and ``RetinaFace.from_biubug6``)."""
import torch

from ..io import load_checkpoint


def read_state_dict(path, map_location="cpu"):
    """A plain ``{name: tensor}`` state dict from ``path`` (``weights_only``
    loading): the file's dict itself or the one it holds under 'state_dict';
    a ``module.`` prefix (DataParallel) is stripped from every key.
    Anything else raises ValueError naming the path."""
    ckpt = load_checkpoint(path, map_location=map_location)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):
        ckpt = ckpt["state_dict"]
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a state_dict, got {type(ckpt).__name__}")
    sd = {}
    for k, v in ckpt.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ValueError(f"{path}: not a state_dict (entry {k!r} is {type(v).__name__})")
        sd[k[len("module."):] if k.startswith("module.") else k] = v
    return sd


def load_strict(model, sd, where, optional=()):
    """Load ``sd`` into ``model`` requiring the same keys and shapes.

    A ValueError lists missing and unexpected keys and shape mismatches
    (``where`` names the source). Keys of ``model`` ending in one of
    ``optional`` may be absent (they keep the model's values). Tensors are cast
    to the model's dtypes."""
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(sd) if not k.endswith(tuple(optional)))
    unexpected = sorted(set(sd) - set(own))
    bad = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    if missing or unexpected or bad:
        def show(keys):
            return ", ".join(keys[:40]) + (f", ... ({len(keys)} in all)" if len(keys) > 40 else "")

        msg = [f"{where}: state_dict does not match {type(model).__name__}"]
        if missing:
            msg.append(f"missing keys ({len(missing)}): {show(missing)}")
        if unexpected:
            msg.append(f"unexpected keys ({len(unexpected)}): {show(unexpected)}")
        if bad:
            msg.append("shape mismatches: " + show([f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}"
                                                     for k in bad]))
        raise ValueError("; ".join(msg))
    full = {k: (sd[k] if k in sd else v).to(v.dtype) for k, v in own.items()}
    model.load_state_dict(full, strict=True)
