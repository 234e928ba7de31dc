"""Synthetic low light: darken single images or a whole WIDER-format dataset.

``darken(images, exposure, ...)`` runs an exposure-conditioned darkener:
the project's ``tasklle.models.ECZeroDCE`` (``darkener='ec-zero-dce'``,
shipped weights by default) or LEDNet's released ``ConditionZeroDCE``
(``darkener='lednet'``, with LEDNet's ``ce_zerodce.pth`` as ``model``, run
through LEDNet's generation pipeline, see ``tasklle.models.lednet_darkener``).
By default it follows the method's generation: saturated pixels (L/100 > 0.97)
stay bright and no noise is added, as LEDNet's generation script adds none.
Sensor noise is an option (``noise='lednet'`` or ``'physical'``,
``tasklle.noise``) for harder data.

Dark copies of whole datasets: ``tasklle.dataset_darkening.darken_dataset``
(also ``tasklle.darken_dataset``), which uses the helpers here.
"""
import hashlib
import json
import os

import torch

from ._alloc import with_fast_alloc

__all__ = ["darken", "image_seed", "DARKENERS"]

DARKENERS = ("ec-zero-dce", "lednet")
# the module options (not weights) that change a darkener's output
_MODEL_OPTIONS = {"ec-zero-dce": ("preserve_color", "keep_saturated", "scale_factor"),
                  "lednet": ("channel_order", "tile")}
_CACHE = {}


# -- helpers -----------------------------------------------------------------
def image_seed(seed, key):
    """The per-image seed: the first 63 bits of SHA-256(f'{seed}:{key}')."""
    digest = hashlib.sha256(f"{int(seed)}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _resolve_model(model, darkener="ec-zero-dce"):
    """The darkener module. 'ec-zero-dce': None -> the shipped weights (cached), a path ->
    ECZeroDCE.load; 'lednet': a path to LEDNet's ce_zerodce.pth -> ConditionZeroDCE.from_lednet.
    A module is used as it is (its class decides the pipeline)."""
    from .models.ec_zero_dce import ECZeroDCE

    if darkener not in DARKENERS:
        raise ValueError(f"darkener must be one of {DARKENERS}, got {darkener!r}")
    if isinstance(model, torch.nn.Module):
        return model
    if darkener == "lednet":
        from .models.lednet_darkener import ConditionZeroDCE

        if model is None:
            raise ValueError("darkener 'lednet' needs LEDNet's weights: pass the path of ce_zerodce.pth (a release "
                             "asset of LEDNet, github.com/sczhou/LEDNet; --weights on the command line)")
        if isinstance(model, (str, os.PathLike)):
            return ConditionZeroDCE.from_lednet(model)
        raise TypeError(f"model must be a path or a ConditionZeroDCE, got {type(model).__name__}")
    if model is None:
        if "shipped" not in _CACHE:
            _CACHE["shipped"] = ECZeroDCE.shipped()
        return _CACHE["shipped"]
    if isinstance(model, (str, os.PathLike)):
        return ECZeroDCE.load(model)
    if isinstance(model, torch.nn.Module):
        return model
    raise TypeError(f"model must be None, a path or an ECZeroDCE, got {type(model).__name__}")


def _model_fingerprint(model):
    """SHA-256 over the model's config and weights: a manifest made by another model is not resumed."""
    h = hashlib.sha256()
    cfg = model.config() if hasattr(model, "config") else {}
    h.update(json.dumps(cfg, sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _check_noise(noise):
    from .noise import NOISE_KINDS

    if isinstance(noise, str) and noise.lower() == "none":
        noise = None
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of 'lednet', 'physical' or None, got {noise!r}")
    return noise


def _check_exposure_value(e, name="exposure"):
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not (0 < e < 1):
        raise ValueError(f"{name} must be a number in (0, 1), got {e!r}")
    return float(e)


def _check_seed_quality(seed, quality):
    """The checks of --seed and --quality, shared by the dataset and single-image paths."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int in [1, 100], got {quality!r}")


def _check_exposure_range(exposure):
    """A number (fixed E) or a pair (lo, hi) -> (lo, hi)."""
    if isinstance(exposure, (int, float)) and not isinstance(exposure, bool):
        e = _check_exposure_value(exposure)
        return e, e
    try:
        lo, hi = exposure
    except (TypeError, ValueError):
        raise ValueError(f"exposure must be a number or a pair (lo, hi), got {exposure!r}") from None
    lo, hi = _check_exposure_value(lo, "exposure lo"), _check_exposure_value(hi, "exposure hi")
    if lo > hi:
        raise ValueError(f"exposure range must have lo <= hi, got {exposure!r}")
    return lo, hi


def _darkener_kind(model):
    from .models.lednet_darkener import ConditionZeroDCE

    return "lednet" if isinstance(model, ConditionZeroDCE) else "ec-zero-dce"


def _darken_tensor(x, exposures, gens, noise, model, keep_saturated):
    """x (B, 3, H, W); exposures list of B floats; gens B generators -> (y, list of noise params)."""
    from .models.ec_zero_dce import SATURATION_THRESHOLD, lightness
    from .noise import add_noise

    e = torch.tensor(exposures, dtype=x.dtype)
    with torch.no_grad():
        if _darkener_kind(model) == "lednet":
            # LEDNet's pipeline conditions saturated regions on their own lightness (its exposure map)
            y = model.darken(x, e)
        else:
            y, _ = model(x, e)
            if keep_saturated and not getattr(model, "keep_saturated", False):
                y = torch.where(lightness(x) > SATURATION_THRESHOLD, x, y)
        y = y.clamp(0.0, 1.0)
        outs, params = [], []
        for i in range(x.shape[0]):
            yi, p = add_noise(y[i], noise, generator=gens[i])
            outs.append(yi.clamp(0.0, 1.0))
            params.append(p)
    return torch.stack(outs), params


# -- single images -------------------------------------------------------------
@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def darken(images, exposure, seed=None, noise=None, model=None, keep_saturated=True, return_info=False,
           darkener="ec-zero-dce"):
    """Darken one image or a batch to exposure E (and optionally add sensor noise).

    Args:
        images: tensor (3,H,W)/(B,3,H,W) in [0,1], NumPy (H,W,3)/(B,H,W,3)
            uint8 or float, PIL image or path; the result has the same kind
            (a path gives a (3,H,W) tensor).
        exposure: target exposure E in (0, 1): a number, or one per image.
        seed: int -> image i uses ``image_seed(seed, i)`` for its noise
            (reproducible); None -> drawn from torch's default generator.
        noise: None (default: the method's generation adds no noise), 'lednet' or 'physical'.
        model: for 'ec-zero-dce': None (shipped ECZeroDCE weights), a checkpoint path or an
            ECZeroDCE; for 'lednet': the path of LEDNet's ce_zerodce.pth or a ConditionZeroDCE.
        keep_saturated: pixels with lightness L/100 > 0.97 keep their value (LEDNet; default).
            LEDNet's pipeline always treats them its own way (their exposure map is their L/100).
        darkener: 'ec-zero-dce' (the project's, default) or 'lednet' (LEDNet's released net).
        return_info: also return a list of per-image dicts
            {'exposure', 'seed', 'noise': drawn noise parameters}.
    """
    from .io import from_tensor, to_tensor
    from .noise import generator_for

    x, kind = to_tensor(images)
    x = x.float()
    B = x.shape[0]
    if isinstance(exposure, (int, float)) and not isinstance(exposure, bool):
        exposures = [_check_exposure_value(exposure)] * B
    else:
        try:
            vals = torch.as_tensor(exposure, dtype=torch.float64).reshape(-1).tolist()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"exposure must be a number or one number per image, got {exposure!r}") from None
        if len(vals) != B:
            raise ValueError(f"exposure: {len(vals)} values for {B} images")
        exposures = [_check_exposure_value(v) for v in vals]
    noise = _check_noise(noise)
    if seed is None:
        seed = int(torch.randint(0, 2**62, ()).item())
    elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    net = _resolve_model(model, darkener)
    seeds = [image_seed(seed, i) for i in range(B)]
    y, params = _darken_tensor(x, exposures, [generator_for(s) for s in seeds], noise, net, keep_saturated)
    result = from_tensor(y, kind)
    if return_info:
        info = [{"exposure": e, "seed": s, "noise": p} for e, s, p in zip(exposures, seeds, params)]
        return result, info
    return result
