"""Fused Zero-DCE losses with autograd: one C call computes every requested term
and the compact gradients; the backward writes the full-size gradients in one
pass (see ``csrc/include/tasklle.h``).

``zero_dce_losses(enhanced, original, curve_maps, ...)`` returns
``(total, terms)``, like ``tasklle.losses.zero_dce_loss``. CPU float32/float64
tensors run in the C core; tensors on any other device run the reference twin
``tasklle.reference.zero_dce_losses`` (same semantics, same exceptions).

Gradients flow to ``enhanced``, ``curve_maps``, and also to ``original`` and a
per-image ``exposure`` tensor when they require grad (the official training
treats both as constants; we do not need to). The C path is differentiable
once (``torch.autograd.function.once_differentiable``): for higher-order
gradients pass ``impl='reference'``.

Passes over memory in one training step (B x 3 x H x W images, maps A):
forward reads Y and I once and A once (computing dL/dA in that same pass when A
requires grad), backward writes dL/dY once; dL/dA is reused as is when the
loss is backpropagated with the usual unit gradient of the total.

NaN and infinities follow one rule on both paths (IEEE arithmetic on the
formulas as written; see ``tasklle.reference.zerodce_loss``): the same terms
and the same gradient elements come out NaN or infinite.

``impl``: 'auto' (default: C on CPU, reference elsewhere), 'c' or 'reference',
resolved by the rule every op shares (``tasklle.ops._common.use_c``, which
also reads ``TASKLLE_IMPL`` for 'auto').
"""
import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .. import _C
from ..reference import zerodce_loss as _ref
from ._common import c_array as _np
from ._common import use_c

_MASK = {"spa": 1, "exp": 2, "col": 4}
_IDX = {"spa": 0, "exp": 1, "col": 2}


class _FusedLosses(torch.autograd.Function):
    @staticmethod
    def forward(ctx, enhanced, original, curve_maps, exposure, cfg):
        terms, w, ps, pe, want_grad_maps = cfg
        ctx.set_materialize_grads(False)
        ctx.cfg = cfg
        image_terms = [t for t in terms if t != "tv"]
        ref = enhanced if enhanced is not None else curve_maps
        values = {}
        ctx.compact = None
        if image_terms:
            y = _np(enhanced)
            b, _, h, wd = y.shape
            mask = sum(_MASK[t] for t in image_terms)
            losses = np.zeros(3)
            gs = np.empty((b, h // ps, wd // ps)) if "spa" in terms else None
            ge = np.empty((b, h // pe, wd // pe)) if "exp" in terms else None
            gc = np.empty((b, 3)) if "col" in terms else None
            e = exposure.detach().to(torch.float64).contiguous().numpy() if exposure is not None else None
            _C.zerodce_loss_forward(losses, gs, ge, gc, y, _np(original) if original is not None else None, e,
                                    ps, pe, mask)
            for t in image_terms:
                values[t] = float(losses[_IDX[t]])
            ctx.compact = (gs, ge, gc)
            ctx.image_shape = y.shape
            ctx.image_dtype = y.dtype
        ctx.grad_maps = None
        ctx.coef0 = None
        if "tv" in terms:
            a = _np(curve_maps)
            loss = np.zeros(1)
            grad = None
            if want_grad_maps:
                # dL/dA for the usual backward (unit gradient of the total) in the same pass
                ctx.coef0 = w["tv"] if w["tv"] != 0 else 1.0
                grad = np.empty_like(a)
            _C.zerodce_loss_tv_forward(loss, grad, a, ctx.coef0 if grad is not None else 1.0)
            values["tv"] = float(loss[0])
            if grad is not None:
                ctx.grad_maps = torch.from_numpy(grad)
        ctx.save_for_backward(curve_maps if "tv" in terms else None)
        total = sum(w[t] * v for t, v in values.items())
        dtype = ref.dtype
        outs = [torch.tensor(total, dtype=dtype)]
        outs += [torch.tensor(values.get(t, 0.0), dtype=dtype) for t in _ref.TERMS]
        return tuple(outs)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_total, g_spa, g_exp, g_col, g_tv):
        terms, w, ps, pe, _ = ctx.cfg
        gt = float(g_total) if g_total is not None else 0.0
        gterm = {"spa": g_spa, "exp": g_exp, "col": g_col, "tv": g_tv}
        coef = {t: gt * w[t] + (float(gterm[t]) if gterm[t] is not None else 0.0) for t in terms}
        need_y, need_i, need_a, need_e = ctx.needs_input_grad[:4]
        grad_y = grad_i = grad_a = grad_e = None
        if (need_y or need_i) and ctx.compact is not None:
            gs, ge, gc = ctx.compact
            grad_y = np.empty(ctx.image_shape, dtype=ctx.image_dtype)
            grad_i = np.empty(ctx.image_shape, dtype=ctx.image_dtype) if need_i and gs is not None else None
            _C.zerodce_loss_backward(grad_y, grad_i, gs, ge, gc, ps, pe, coef.get("spa", 0.0),
                                     coef.get("exp", 0.0), coef.get("col", 0.0))
            grad_y = torch.from_numpy(grad_y) if need_y else None
            if need_i:
                grad_i = torch.from_numpy(grad_i) if grad_i is not None else torch.zeros(ctx.image_shape,
                                                                                       dtype=grad_y.dtype)
        if need_a and "tv" in terms:
            (maps,) = ctx.saved_tensors
            c = coef["tv"]
            if ctx.grad_maps is not None and c == ctx.coef0:
                grad_a, ctx.grad_maps = ctx.grad_maps, None  # hand over once; a second backward recomputes
            else:
                ga = np.empty(tuple(maps.shape), dtype=_np(maps).dtype)
                _C.zerodce_loss_tv_backward(ga, _np(maps), c)
                grad_a = torch.from_numpy(ga)
        if need_e and "exp" in terms:
            # dL_exp/dE_b = -sum over the image's cells of dL_exp/dpooled = -(3 pe^2) * sum grad_exp[b]
            ge = ctx.compact[1]
            grad_e = torch.from_numpy(-(ge.reshape(ge.shape[0], -1).sum(1)) * (3.0 * pe * pe) * coef["exp"])
        return grad_y, grad_i, grad_a, grad_e, None


def zero_dce_losses(enhanced, original, curve_maps, exposure=0.6, weights=None, spa_pool=4, exp_pool=16,
                    terms=_ref.TERMS, impl="auto"):
    """Zero-DCE's non-reference losses, fused (C on CPU).

    Args:
        enhanced: (B, 3, H, W) enhanced image Y (needed unless ``terms == ('tv',)``).
        original: (B, 3, H, W) input image I (needed for 'spa').
        curve_maps: (B, C, Ha, Wa) curve parameter maps A (needed for 'tv').
        exposure: target mean exposure E: a number or a (B,) tensor of per-image targets.
        weights: dict overriding ``{'spa': 1, 'exp': 10, 'col': 5, 'tv': 1600}``.
        spa_pool, exp_pool: pool sizes of L_spa (4) and L_exp (16); H, W >= each used pool.
        terms: which terms to compute (default all four).
        impl: 'auto', 'c' or 'reference'.

    Returns:
        ``(total, {'spa', 'exp', 'col', 'tv'})`` scalar tensors of enhanced's dtype
        (only the requested terms), ``total = sum weights[t] * term``.
    """
    terms, w, ps, pe, e = _ref.check_arguments(enhanced, original, curve_maps, exposure, weights, spa_pool,
                                               exp_pool, terms)
    image_terms = [t for t in terms if t != "tv"]
    y = enhanced if image_terms else None
    i = original if "spa" in terms else None
    a = curve_maps if "tv" in terms else None
    if not use_c("zero_dce_losses", impl, enhanced=y, original=i, curve_maps=a):
        return _ref.zero_dce_losses(enhanced, original, curve_maps, exposure, weights, spa_pool, exp_pool, terms)
    want_grad_maps = a is not None and a.requires_grad and torch.is_grad_enabled()
    cfg = (terms, w, ps, pe, want_grad_maps)
    outs = _FusedLosses.apply(y, i, a, e, cfg)
    return outs[0], {t: outs[1 + k] for k, t in enumerate(_ref.TERMS) if t in terms}
