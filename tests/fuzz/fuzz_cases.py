"""Fuzz cases for the C-backed ops and every raw ``tasklle._C`` function.

Each case has a string id; ``run_case(id)`` runs it and returns
``(outcome, detail)`` with outcome one of

- ``"clean"``: refused with TypeError / ValueError / MemoryError (or, for a
  public op, the same kind of error as its twin);
- ``"ok"``: accepted, and the result is right (see below);
- ``"wrong"``: a silent wrong result: accepted and different from the oracle,
  or accepted although the contract says refuse (an output overlapping an
  input, a read-only output);
- ``"unclean"``: any other exception (OverflowError, SystemError, ...).

Crashes and hangs are seen by the driver (tests/fuzz/test_fuzz.py), which runs
the cases in subprocesses.

Oracles. Raw functions: a call that is accepted with a mutated argument (a
strided or reversed view, big-endian bytes, another dtype, overlapping
memory) must give what the same call gives on fresh native C-contiguous
copies of the same values; and the valid baseline calls are checked against
the PyTorch twins. Public ops: an accepted call must agree with the twin in
``tasklle.reference`` on the same inputs (NaN / inf in the same places).
Everything is deterministic (fixed seeds), so a failing id reproduces.
"""
import importlib
import math
import traceback

import numpy as np
import torch

from tasklle import _C, ops

# the twin modules (tasklle.reference re-exports functions of the same names)
ref_assign = importlib.import_module("tasklle.reference.assign")
ref_boxes = importlib.import_module("tasklle.reference.boxes")
ref_curve = importlib.import_module("tasklle.reference.curve")
ref_loss = importlib.import_module("tasklle.reference.zerodce_loss")
ref_sep = importlib.import_module("tasklle.reference.separable_conv")

CLEAN = (TypeError, ValueError, MemoryError)


# ---------------------------------------------------------------------------
# raw _C functions: a valid call per function, then mutations of one argument
# ---------------------------------------------------------------------------

def _boxes(rng, n, dtype=np.float64):
    xy = rng.uniform(0, 50, (n, 2))
    wh = rng.uniform(1, 30, (n, 2))
    return np.ascontiguousarray(np.concatenate([xy, xy + wh], 1).astype(dtype))


class Spec:
    """A raw function: ``make(rng, dtype)`` -> ordered {name: value}; which names
    are outputs (written), array inputs, and scalars (with their kind)."""

    def __init__(self, name, make, outputs, scalars, twin=None):
        self.name, self.make, self.outputs, self.scalars, self.twin = name, make, outputs, scalars, twin


def _curve_fwd(rng, dt):
    x = rng.uniform(0, 1, (2, 3, 5, 6)).astype(dt)
    A = rng.uniform(-1, 0, (2, 24, 5, 6)).astype(dt)
    return {"out": np.empty_like(x), "half": np.empty_like(x), "x": x, "A": A, "iterations": 8, "half_after": 4}


def _curve_bwd(rng, dt):
    x = rng.uniform(0, 1, (2, 3, 5, 6)).astype(dt)
    A = rng.uniform(-1, 0, (2, 3, 5, 6)).astype(dt)
    return {"grad_x": np.empty_like(x), "grad_A": np.empty_like(A), "grad_out": rng.normal(size=x.shape).astype(dt),
            "grad_half": rng.normal(size=x.shape).astype(dt), "x": x, "A": A, "iterations": 8, "half_after": 4}


def _curve_up(rng, dt):
    x = rng.uniform(0, 1, (2, 3, 7, 9)).astype(dt)
    a = rng.uniform(-1, 0, (2, 3, 3, 4)).astype(dt)
    return {"out": np.empty_like(x), "maps": np.empty_like(x), "x": x, "a": a, "iterations": 8}


def _zl_fwd(rng, dt):
    y = rng.uniform(0, 1, (2, 3, 16, 16)).astype(dt)
    return {"losses": np.zeros(3), "grad_spa": np.empty((2, 4, 4)), "grad_exp": np.empty((2, 2, 2)),
            "grad_col": np.empty((2, 3)), "enhanced": y, "original": rng.uniform(0, 1, y.shape).astype(dt),
            "exposure": np.array([0.6, 0.5]), "spa_pool": 4, "exp_pool": 8, "terms": 7}


def _zl_bwd(rng, dt):
    return {"grad_enhanced": np.empty((2, 3, 16, 16), dt), "grad_original": np.empty((2, 3, 16, 16), dt),
            "grad_spa": rng.normal(size=(2, 4, 4)), "grad_exp": rng.normal(size=(2, 2, 2)),
            "grad_col": rng.normal(size=(2, 3)), "spa_pool": 4, "exp_pool": 8, "c_spa": 1.0, "c_exp": 10.0,
            "c_col": 5.0}


def _tv_fwd(rng, dt):
    a = rng.uniform(-1, 0, (2, 6, 7, 5)).astype(dt)
    return {"loss": np.zeros(1), "grad": np.empty_like(a), "curve_maps": a, "coef": 1600.0}


def _tv_bwd(rng, dt):
    a = rng.uniform(-1, 0, (2, 6, 7, 5)).astype(dt)
    return {"grad": np.empty_like(a), "curve_maps": a, "coef": 3.0}


def _iou(rng, dt):
    return {"out": np.empty((5, 4), dt), "a": _boxes(rng, 5, dt), "b": _boxes(rng, 4, dt)}


def _iou_al(rng, dt):
    return {"out": np.empty(5, dt), "a": _boxes(rng, 5, dt), "b": _boxes(rng, 5, dt)}


def _diou_fwd(rng, dt):
    return {"loss": np.empty(6, dt), "pred": _boxes(rng, 6, dt), "target": _boxes(rng, 6, dt),
            "weight": rng.uniform(0, 1, 6).astype(dt), "eps": 1e-6}


def _diou_bwd(rng, dt):
    return {"grad_pred": np.empty((6, 4), dt), "grad_target": np.empty((6, 4), dt),
            "grad_loss": rng.normal(size=6).astype(dt), "pred": _boxes(rng, 6, dt), "target": _boxes(rng, 6, dt),
            "weight": rng.uniform(0, 1, 6).astype(dt), "scale": 1.0, "eps": 1e-6}


def _nms(rng, dt):
    return {"keep": np.empty(12, np.int64), "boxes": _boxes(rng, 12, dt), "scores": rng.uniform(0, 1, 12),
            "iou_threshold": 0.3}


def _assign(rng, dt):
    return {"assigned": np.empty(20, np.int64), "max_iou": np.empty(20, dt), "anchors": _boxes(rng, 20, dt),
            "gts": _boxes(rng, 4, dt), "gt_ignore": np.array([0, 1, 0, 0], np.uint8), "pos_thr": 0.35,
            "neg_thr": 0.3, "min_pos_thr": 0.2, "gt_max_assign_all": True, "match_low_quality": True}


def _wider(rng, dt):
    pred = np.concatenate([rng.uniform(0, 40, (7, 2)), rng.uniform(1, 20, (7, 2)), rng.uniform(0, 1, (7, 1))], 1)
    gt = np.concatenate([rng.uniform(0, 40, (5, 2)), rng.uniform(1, 20, (5, 2))], 1)
    return {"pr_counts": np.zeros((3, 50, 2), np.int64), "pred": pred, "pred_offsets": np.array([0, 3, 7], np.int64),
            "gt": gt, "gt_offsets": np.array([0, 2, 5], np.int64),
            "counted": np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], np.uint8),
            "score_min": float(pred[:, 4].min()), "score_max": float(pred[:, 4].max()), "iou_thresh": 0.5}


def _wider_per_image(rng, dt):
    v = _wider(rng, dt)
    del v["pr_counts"]
    return {"counts": np.zeros((2, 3, 50, 2), np.int64), **v}


def _sep_weights(rng, dt, c, o):
    return {"dw_w": rng.normal(size=(c, 1, 3, 3)).astype(dt), "dw_b": rng.normal(size=c).astype(dt),
            "pw_w": rng.normal(size=(o, c, 1, 1)).astype(dt)}


def _sep_fwd(rng, dt):
    x = rng.uniform(0, 1, (2, 3, 5, 6)).astype(dt)
    x2 = rng.uniform(0, 1, (2, 2, 5, 6)).astype(dt)
    w = _sep_weights(rng, dt, 5, 4)
    return {"y": np.empty((2, 4, 5, 6), dt), "x": x, "x2": x2, **w, "pw_b": rng.normal(size=4).astype(dt),
            "relu": True}


def _sep_bwd(rng, dt):
    v = _sep_fwd(rng, dt)
    y = _twin_sep_fwd(v)["y"]
    return {"grad_x": np.empty_like(v["x"]), "grad_x2": np.empty_like(v["x2"]), "grad_dw_w": np.empty_like(v["dw_w"]),
            "grad_dw_b": np.empty_like(v["dw_b"]), "grad_pw_w": np.empty_like(v["pw_w"]),
            "grad_pw_b": np.empty_like(v["pw_b"]), "grad_y": rng.normal(size=y.shape).astype(dt), "y": y,
            "x": v["x"], "x2": v["x2"], "dw_w": v["dw_w"], "dw_b": v["dw_b"], "pw_w": v["pw_w"], "relu": True}


def _threads(rng, dt):
    return {"n": 1}


# twins of the baseline calls (the specification the valid calls are held to)
def _t(a):
    return torch.from_numpy(np.array(a))


def _twin_curve_fwd(v):
    final, half = ref_curve.curve(_t(v["x"]), _t(v["A"]), v["iterations"], return_half=True)
    return {"out": final.numpy(), "half": half.numpy()}


def _twin_curve_up(v):
    out, maps = ref_curve.curve_upsampled(_t(v["x"]), _t(v["a"]), v["iterations"])
    return {"out": out.numpy(), "maps": maps.numpy()}


def _twin_sep_fwd(v):
    y = ref_sep.separable_conv((_t(v["x"]), _t(v["x2"])), _t(v["dw_w"]), _t(v["dw_b"]), _t(v["pw_w"]), _t(v["pw_b"]),
                               relu=v["relu"])
    return {"y": y.numpy()}


def _twin_iou(v):
    return {"out": ref_boxes.box_iou(_t(v["a"]), _t(v["b"])).numpy()}


def _twin_iou_al(v):
    return {"out": ref_boxes.box_iou(_t(v["a"]), _t(v["b"]), aligned=True).numpy()}


def _twin_diou_fwd(v):
    loss = ref_boxes.diou_loss(_t(v["pred"]), _t(v["target"]), None, "none", None, v["eps"])
    return {"loss": loss.numpy(), "return": float((loss * _t(v["weight"])).sum())}


def _twin_nms(v):
    keep = ref_boxes.nms(_t(v["boxes"]), _t(v["scores"]), v["iou_threshold"])
    return {"return": len(keep), "keep[:k]": keep.numpy()}


def _twin_assign(v):
    a, m = ref_assign.assign_max_iou(_t(v["anchors"]), _t(v["gts"]), v["pos_thr"], v["neg_thr"], v["min_pos_thr"],
                                     v["gt_max_assign_all"], v["match_low_quality"], _t(v["gt_ignore"]).bool())
    return {"assigned": a.numpy(), "max_iou": m.numpy()}


def _twin_zl_fwd(v):
    y, i = _t(v["enhanced"]), _t(v["original"])
    e = _t(v["exposure"])
    _, terms = ref_loss.zero_dce_losses(y, i, None, e, None, v["spa_pool"], v["exp_pool"], ("spa", "exp", "col"))
    return {"losses": np.array([float(terms[k]) for k in ("spa", "exp", "col")])}


def _twin_tv_fwd(v):
    return {"loss": np.array([float(ref_loss.illumination_smoothness(_t(v["curve_maps"])))])}


SPECS = [
    Spec("curve_forward", _curve_fwd, ["out", "half"], {"iterations": "int", "half_after": "int"}, _twin_curve_fwd),
    Spec("curve_upsample_forward", _curve_up, ["out", "maps"], {"iterations": "int"}, _twin_curve_up),
    Spec("curve_backward", _curve_bwd, ["grad_x", "grad_A"], {"iterations": "int", "half_after": "int"}),
    Spec("zerodce_loss_forward", _zl_fwd, ["losses", "grad_spa", "grad_exp", "grad_col"],
         {"spa_pool": "int", "exp_pool": "int", "terms": "int"}, _twin_zl_fwd),
    Spec("zerodce_loss_backward", _zl_bwd, ["grad_enhanced", "grad_original"],
         {"spa_pool": "int", "exp_pool": "int", "c_spa": "float", "c_exp": "float", "c_col": "float"}),
    Spec("zerodce_loss_tv_forward", _tv_fwd, ["loss", "grad"], {"coef": "float"}, _twin_tv_fwd),
    Spec("zerodce_loss_tv_backward", _tv_bwd, ["grad"], {"coef": "float"}),
    Spec("boxes_iou", _iou, ["out"], {}, _twin_iou),
    Spec("boxes_iou_aligned", _iou_al, ["out"], {}, _twin_iou_al),
    Spec("boxes_diou_forward", _diou_fwd, ["loss"], {"eps": "float"}, _twin_diou_fwd),
    Spec("boxes_diou_backward", _diou_bwd, ["grad_pred", "grad_target"], {"scale": "float", "eps": "float"}),
    Spec("boxes_nms", _nms, ["keep"], {"iou_threshold": "float"}, _twin_nms),
    Spec("assign_max_iou", _assign, ["assigned", "max_iou"],
         {"pos_thr": "float", "neg_thr": "float", "min_pos_thr": "float", "gt_max_assign_all": "bool",
          "match_low_quality": "bool"}, _twin_assign),
    Spec("wider_eval_forward", _wider, ["pr_counts"],
         {"score_min": "float", "score_max": "float", "iou_thresh": "float"}),
    Spec("wider_eval_per_image", _wider_per_image, ["counts"],
         {"score_min": "float", "score_max": "float", "iou_thresh": "float"}),
    Spec("separable_conv_forward", _sep_fwd, ["y"], {"relu": "bool"}, _twin_sep_fwd),
    Spec("separable_conv_backward", _sep_bwd, ["grad_x", "grad_x2", "grad_dw_w", "grad_dw_b", "grad_pw_w", "grad_pw_b"],
         {"relu": "bool"}),
    Spec("set_num_threads", _threads, [], {"n": "int"}),
]
SPEC = {s.name: s for s in SPECS}

BAD_INTS = [-1, 0, 65, 2**31 - 1, 2**31, 2**32 + 1, 2**63, -2**63 - 1, 2**64 + 1, 10**30, True, 1.5, "3", None,
            float("nan"), np.int64(2**62), np.bool_(True), np.uint64(2**64 - 1)]
BAD_FLOATS = [float("nan"), float("inf"), float("-inf"), 10**400, -10**400, 1e308, -0.0, True, "x", None, 1j,
              np.complex64(1), np.bool_(True), np.float64(-1.0),
              np.float32(0.5)]
DTYPES = ["int32", "int64", "uint8", "float16", "float32", "float64", "bool", "complex64", "complex128", "object"]
ARRAY_MUTATIONS = (["dtype:" + d for d in DTYPES] +
                   ["bigendian", "ndim+1", "ndim-1", "shape0+1", "shape-1+1", "empty", "strided", "reversed",
                    "readonly", "list", "none", "float", "nan", "inf", "-inf", "broadcast-huge", "fortran"])


def _native_copy(a):
    """A fresh, native-order, C-contiguous copy with the same values (the oracle's input)."""
    if not isinstance(a, np.ndarray):
        return a
    dt = a.dtype.newbyteorder("=") if a.dtype.byteorder not in ("=", "|") else a.dtype
    return np.array(a, dtype=dt, order="C", copy=True)


def _call(spec, values):
    fn = getattr(_C, spec.name)
    ret = fn(*values.values())
    out = {n: np.array(values[n]) for n in spec.outputs if isinstance(values[n], np.ndarray)}
    if ret is not None:
        out["return"] = ret
    if spec.name == "boxes_nms":
        out["keep"] = out["keep"][:ret]
    return out


def _same(a, b, tol=0.0):
    if set(a) != set(b):
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape:
            return False
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            if not np.allclose(x.astype(np.float64), y.astype(np.float64), rtol=tol, atol=tol, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def _mutate_array(values, name, how, rng):
    v = values[name]
    if how.startswith("dtype:"):
        dt = how.split(":", 1)[1]
        if v.dtype == np.dtype(dt):
            return None
        with np.errstate(all="ignore"):
            return v.astype(dt)
    if how == "bigendian":
        if v.dtype.itemsize == 1:
            return None
        return v.astype(v.dtype.newbyteorder(">"))
    if how == "ndim+1":
        return v[None]
    if how == "ndim-1":
        return v.reshape(-1) if v.ndim > 1 else np.array(v[0]) if v.size else None
    if how == "shape0+1":
        return np.ascontiguousarray(np.concatenate([v, v[:1]], 0)) if v.ndim and v.shape[0] else None
    if how == "shape-1+1":
        return np.ascontiguousarray(np.concatenate([v, v[..., :1]], -1)) if v.ndim and v.shape[-1] else None
    if how == "empty":
        return np.ascontiguousarray(v[:0]) if v.ndim else None
    if how == "strided":
        if not v.ndim:
            return None
        w = np.repeat(v, 2, axis=-1)
        return w[..., ::2]
    if how == "reversed":
        return v[::-1] if v.ndim and v.shape[0] > 1 else None
    if how == "readonly":
        r = v.copy()
        r.flags.writeable = False
        return r
    if how == "list":
        return v.tolist()
    if how == "none":
        return None if False else "NONE"
    if how == "float":
        return 0.5
    if how in ("nan", "inf", "-inf"):
        if v.dtype.kind != "f" or not v.size:
            return None
        r = v.copy()
        r.reshape(-1)[rng.integers(r.size)] = float(how)
        return r
    if how == "broadcast-huge":
        if not v.size:
            return None
        return np.broadcast_to(v.reshape(-1)[:1].reshape((1,) * v.ndim), (2**40,) + v.shape[1:])
    if how == "fortran":
        return np.asfortranarray(v) if v.ndim > 1 and min(v.shape) > 1 else None
    raise AssertionError(how)


def _overlapped(values, out_name, in_name):
    """values with out_name re-made as a view sharing bytes with in_name (both contiguous, aligned)."""
    o, i = values[out_name], values[in_name]
    if not (isinstance(o, np.ndarray) and isinstance(i, np.ndarray)) or not o.nbytes or not i.nbytes:
        return None
    off = (i.nbytes // 2) // 16 * 16
    buf = np.zeros(off + max(i.nbytes - off, o.nbytes) + 16, np.uint8)
    iv = buf[:i.nbytes].view(i.dtype).reshape(i.shape)
    iv[...] = i
    ov = buf[off:off + o.nbytes].view(o.dtype).reshape(o.shape)
    new = dict(values)
    new[in_name], new[out_name] = iv, ov
    return new


def raw_case_ids():
    ids = []
    for spec in SPECS:
        for dt in ("float32", "float64"):
            for seed in range(3):
                ids.append(f"raw|{spec.name}|valid|{dt}|{seed}")
        probe = spec.make(np.random.default_rng(0), np.float64)
        arrays = [n for n, v in probe.items() if isinstance(v, np.ndarray)]
        for n in arrays:
            for how in ARRAY_MUTATIONS:
                for dt in ("float32", "float64"):
                    ids.append(f"raw|{spec.name}|arr|{n}|{how}|{dt}")
        for o in spec.outputs:
            for i in arrays:
                if i != o:
                    ids.append(f"raw|{spec.name}|overlap|{o}|{i}")
        for n, kind in spec.scalars.items():
            bad = BAD_INTS if kind == "int" else BAD_FLOATS if kind == "float" else ["x", None]
            for k in range(len(bad)):
                ids.append(f"raw|{spec.name}|scalar|{n}|{k}")
        ids.append(f"raw|{spec.name}|argc|-1")
        ids.append(f"raw|{spec.name}|argc|+1")
    for name in ("get_num_threads", "build_info"):
        ids.append(f"raw|{name}|junk")
    return ids


def _run_raw(parts):
    _, name, kind = parts[:3]
    if kind == "junk":
        try:
            getattr(_C, name)(1, 2)
        except CLEAN:
            return "clean", ""
        return "wrong", "accepted junk arguments"
    spec = SPEC[name]
    if kind == "valid":
        dt, seed = np.dtype(parts[3]), int(parts[4])
        values = spec.make(np.random.default_rng(seed), dt)
        got = _call(spec, values)
        if spec.twin is None:
            return "ok", "no twin (covered by the op tests)"
        want = spec.twin(values)
        if name == "boxes_nms":
            got = {"return": got["return"], "keep[:k]": got["keep"]}
        got = {k: got[k] for k in want if k in got}  # what the twin specifies
        tol = 2e-5 if dt == np.float32 else 1e-9
        return ("ok", "") if _same(got, want, tol) else ("wrong", f"C {got} vs twin {want}")
    rng = np.random.default_rng(1)
    if kind == "arr":
        n, how, dt = parts[3], parts[4], np.dtype(parts[5])
        values = spec.make(rng, dt)
        m = _mutate_array(values, n, how, rng)
        if m is None:
            return "skip", ""
        values[n] = None if isinstance(m, str) and m == "NONE" else m
        return _accepted_or_refused(spec, values, must_refuse=how in ("readonly",) and n in spec.outputs,
                                    tol=1e-3 if how.startswith("dtype:") else 0.0)
    if kind == "overlap":
        values = _overlapped(spec.make(rng, np.float64), parts[3], parts[4])
        if values is None:
            return "skip", ""
        return _accepted_or_refused(spec, values, must_refuse=True)
    if kind == "scalar":
        n, k = parts[3], int(parts[4])
        kindof = spec.scalars[n]
        bad = BAD_INTS if kindof == "int" else BAD_FLOATS if kindof == "float" else ["x", None]
        values = spec.make(rng, np.float64)
        values[n] = bad[k]
        return _accepted_or_refused(spec, values)
    if kind == "argc":
        values = spec.make(rng, np.float64)
        args = list(values.values())
        args = args[:-1] if parts[3] == "-1" else args + [None]
        try:
            getattr(_C, name)(*args)
        except CLEAN:
            return "clean", ""
        return "wrong", "accepted a wrong argument count"
    raise AssertionError(parts)


def _accepted_or_refused(spec, values, must_refuse=False, tol=0.0):
    try:
        got = _call(spec, values)
    except CLEAN as e:
        return "clean", f"{type(e).__name__}: {e}"
    if must_refuse:
        return "wrong", "accepted an argument the contract refuses"
    if spec.name == "set_num_threads":
        _C.set_num_threads(1)
        return "ok", ""
    # the oracle: the same call on fresh native contiguous copies
    fresh = {k: _native_copy(v) for k, v in values.items()}
    want = _call(spec, fresh)
    return ("ok", "") if _same(got, want, tol) else ("wrong", f"{got} vs {want}")


# ---------------------------------------------------------------------------
# public ops: torch tensors, compared with the twins
# ---------------------------------------------------------------------------

def _box_t(g, n, dtype=torch.float64):
    xy = torch.rand(n, 2, generator=g, dtype=dtype) * 50
    return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g, dtype=dtype) * 30], 1)


def _op_curve(g, dt):
    x = torch.rand(2, 3, 6, 5, generator=g, dtype=dt)
    A = -torch.rand(2, 24, 6, 5, generator=g, dtype=dt)
    return (lambda x, A: ops.curve(x, A, 8, return_half=True),
            lambda x, A: ref_curve.curve(x, A, 8, return_half=True), {"x": x, "A": A})


def _op_losses(g, dt):
    y = torch.rand(2, 3, 16, 16, generator=g, dtype=dt)
    i = torch.rand(2, 3, 16, 16, generator=g, dtype=dt)
    a = -torch.rand(2, 24, 16, 16, generator=g, dtype=dt)

    def op(enhanced, original, curve_maps):
        total, terms = ops.zero_dce_losses(enhanced, original, curve_maps)
        return [total] + [terms[k] for k in sorted(terms)]

    def twin(enhanced, original, curve_maps):
        total, terms = ref_loss.zero_dce_losses(enhanced, original, curve_maps)
        return [total] + [terms[k] for k in sorted(terms)]

    return op, twin, {"enhanced": y, "original": i, "curve_maps": a}


def _op_iou(g, dt):
    return ops.box_iou, ref_boxes.box_iou, {"a": _box_t(g, 5, dt), "b": _box_t(g, 4, dt)}


def _op_iou_al(g, dt):
    return (lambda a, b: ops.box_iou(a, b, aligned=True), lambda a, b: ref_boxes.box_iou(a, b, aligned=True),
            {"a": _box_t(g, 5, dt), "b": _box_t(g, 5, dt)})


def _op_diou(g, dt):
    return (lambda pred, target, weight: ops.diou_loss(pred, target, weight, reduction="none"),
            lambda pred, target, weight: ref_boxes.diou_loss(pred, target, weight, reduction="none"),
            {"pred": _box_t(g, 6, dt), "target": _box_t(g, 6, dt), "weight": torch.rand(6, generator=g, dtype=dt)})


def _op_nms(g, dt):
    return (lambda boxes, scores: ops.nms(boxes, scores, 0.3), lambda boxes, scores: ref_boxes.nms(boxes, scores, 0.3),
            {"boxes": _box_t(g, 12, dt), "scores": torch.rand(12, generator=g, dtype=dt)})


def _op_assign(g, dt):
    return (lambda anchors, gts: ops.assign_max_iou(anchors, gts),
            lambda anchors, gts: ref_assign.assign_max_iou(anchors, gts),
            {"anchors": _box_t(g, 20, dt), "gts": _box_t(g, 4, dt)})


def _op_separable_conv(g, dt):
    def op(x, dw_weight, dw_bias, pw_weight, pw_bias):
        return ops.separable_conv(x, dw_weight, dw_bias, pw_weight, pw_bias, relu=True)

    def twin(x, dw_weight, dw_bias, pw_weight, pw_bias):
        return ref_sep.separable_conv(x, dw_weight, dw_bias, pw_weight, pw_bias, relu=True)

    return op, twin, {"x": torch.rand(2, 5, 6, 7, generator=g, dtype=dt),
                      "dw_weight": torch.randn(5, 1, 3, 3, generator=g, dtype=dt),
                      "dw_bias": torch.randn(5, generator=g, dtype=dt),
                      "pw_weight": torch.randn(4, 5, 1, 1, generator=g, dtype=dt),
                      "pw_bias": torch.randn(4, generator=g, dtype=dt)}


OPS = {"curve": _op_curve, "zero_dce_losses": _op_losses, "box_iou": _op_iou, "box_iou_aligned": _op_iou_al,
       "diou_loss": _op_diou, "nms": _op_nms, "assign_max_iou": _op_assign, "separable_conv": _op_separable_conv}
TENSOR_MUTATIONS = ["dtype:int64", "dtype:int32", "dtype:float16", "dtype:bfloat16", "dtype:bool",
                    "dtype:complex64", "ndim+1", "ndim-1", "shape0+1", "shape-1+1", "empty", "strided", "flipped",
                    "neg_view", "conj_view", "transposed", "nan", "inf", "-inf", "meta", "requires_grad",
                    "expanded", "list"]


def _mutate_tensor(t, how, g):
    if how.startswith("dtype:"):
        dt = getattr(torch, how.split(":", 1)[1])
        return None if t.dtype == dt else t.to(dt)
    if how == "ndim+1":
        return t[None]
    if how == "ndim-1":
        return t.reshape(-1) if t.dim() > 1 else None
    if how == "shape0+1":
        return torch.cat([t, t[:1]], 0)
    if how == "shape-1+1":
        return torch.cat([t, t[..., :1]], -1)
    if how == "empty":
        return t[:0]
    if how == "strided":
        return torch.repeat_interleave(t, 2, dim=-1)[..., ::2]
    if how == "flipped":
        return t.flip(0)
    if how == "neg_view":
        return torch._neg_view(-t)
    if how == "conj_view":
        return t.conj()  # a no-op view for real tensors; still must be accepted
    if how == "transposed":
        return t.transpose(-1, -2).contiguous().transpose(-1, -2) if t.dim() > 1 else None
    if how in ("nan", "inf", "-inf"):
        r = t.clone()
        r.view(-1)[int(torch.randint(r.numel(), (), generator=g))] = float(how)
        return r
    if how == "meta":
        return t.to("meta")
    if how == "requires_grad":
        return t.clone().requires_grad_()
    if how == "expanded":
        return t[:1].expand(t.shape) if t.shape[0] > 1 else None
    if how == "list":
        return t.tolist()
    raise AssertionError(how)


def op_case_ids():
    ids = []
    for name, make in OPS.items():
        for dt in ("float32", "float64"):
            ids.append(f"op|{name}|valid|{dt}")
            _, _, args = make(torch.Generator().manual_seed(0), getattr(torch, dt))
            for arg in args:
                for how in TENSOR_MUTATIONS:
                    ids.append(f"op|{name}|{arg}|{how}|{dt}")
    for k in range(6):
        ids.append(f"op|curve|iterations|{k}")
    for k in range(len(WIDER_MUTATIONS)):
        ids.append(f"op|wider|{k}")
    return ids


def _flat(r):
    if isinstance(r, torch.Tensor):
        return [r]
    out = []
    for x in r:
        out.extend(_flat(x))
    return out


def _agree(got, want, tol):
    got, want = _flat(got), _flat(want)
    if len(got) != len(want):
        return False
    for x, y in zip(got, want):
        if x.shape != y.shape or x.dtype != y.dtype or x.device != y.device:
            return False
        if x.device.type == "meta":
            continue
        x, y = x.detach().resolve_neg().resolve_conj(), y.detach().resolve_neg().resolve_conj()
        if x.is_floating_point():
            if not torch.equal(x.isnan(), y.isnan()) or not torch.equal(x.isinf() & (x > 0), y.isinf() & (y > 0)):
                return False
            fin = x.isfinite() & y.isfinite()
            if not torch.allclose(x[fin].double(), y[fin].double(), rtol=tol, atol=tol):
                return False
        elif not torch.equal(x, y):
            return False
    return True


def _op_outcome(op, twin, args, tol):
    try:
        got = op(**args)
    except CLEAN as e:
        try:
            twin(**args)
        except CLEAN:
            return "clean", f"{type(e).__name__}: {e}"
        except Exception:  # the twin's own error is not part of the contract here
            return "clean", f"{type(e).__name__}: {e}"
        return "clean", f"refused what the twin accepts: {type(e).__name__}: {e}"
    try:
        want = twin(**args)
    except Exception as e:
        return "wrong", f"accepted what the twin refuses ({type(e).__name__}: {e})"
    return ("ok", "") if _agree(got, want, tol) else ("wrong", "differs from the twin")


WIDER_MUTATIONS = [
    ("complex", lambda p: p.astype(np.complex128) + 1j),
    ("int", lambda p: p.astype(np.int64)),
    ("nan", lambda p: np.where(np.arange(p.size).reshape(p.shape) == 4, np.nan, p)),
    ("inf", lambda p: np.where(np.arange(p.size).reshape(p.shape) == 4, np.inf, p)),
    ("huge-scores", lambda p: np.concatenate([p[:, :4], np.where(np.arange(len(p))[:, None] % 2, 1e308, -1e308)], 1)),
    ("4-columns", lambda p: p[:, :4]),
    ("6-columns", lambda p: np.concatenate([p, p[:, :1]], 1)),
    ("1-d", lambda p: p.reshape(-1)),
    ("empty", lambda p: p[:0]),
    ("big-endian", lambda p: p.astype(">f8")),
    ("strided", lambda p: np.repeat(p, 2, axis=1)[:, ::2]),
    ("object", lambda p: p.astype(object)),
    ("torch", lambda p: torch.from_numpy(p)),
    ("torch-neg", lambda p: torch._neg_view(-torch.from_numpy(p))),
    ("list", lambda p: p.tolist()),
    ("string", lambda p: "not an array"),
    ("tiny-scores", lambda p: np.concatenate([p[:, :4], p[:, 4:] * 1e-310], 1)),
]


def _tiny_gt():
    from tasklle.data.wider_format import GroundTruth

    boxes = np.array([[10, 10, 20, 20], [100, 100, 20, 20], [0, 0, 8, 8], [50, 50, 30, 30]], float)
    keep = {s: (np.array([1, 2, 1, 1]), np.array([0, 2, 3, 4])) for s in ("easy", "medium", "hard")}
    return GroundTruth(["0--A", "1--B"], [0, 0, 1], ["a1", "a2", "b1"], boxes, [0, 2, 3, 4], keep)


def _run_wider(k):
    import warnings

    from tasklle.eval import wider

    gt = _tiny_gt()
    rng = np.random.default_rng(k)
    base = {key: np.concatenate([gt.image_boxes(i) + rng.normal(0, 1, (len(gt.image_boxes(i)), 4)),
                                 rng.uniform(0, 1, (len(gt.image_boxes(i)), 1))], 1)
            for i, key in enumerate(gt.keys())}
    _, mutate = WIDER_MUTATIONS[k]
    preds = dict(base)
    preds[("0--A", "a1")] = mutate(base[("0--A", "a1")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            c = wider.evaluate(preds, gt, impl="c")
        except CLEAN as e:
            return "clean", f"{type(e).__name__}: {e}"
        try:
            r = wider.evaluate(preds, gt, impl="reference")
        except Exception as e:
            return "wrong", f"C accepted what the reference refuses: {e}"
    for s in wider.SETTINGS:
        if not (c[s] == r[s] or (math.isnan(c[s]) and math.isnan(r[s])) or abs(c[s] - r[s]) < 1e-9):
            return "wrong", f"{s}: C {c[s]} vs reference {r[s]}"
    return "ok", ""


def _run_op(parts):
    name = parts[1]
    if name == "wider":
        return _run_wider(int(parts[2]))
    if parts[2] == "iterations":
        bad = [0, 65, 2**31, 2**63, 10**30, -1][int(parts[3])]
        x, A = torch.rand(1, 3, 4, 4), -torch.rand(1, 3, 4, 4)
        try:
            ops.curve(x, A, iterations=bad)
        except CLEAN as e:
            return "clean", str(e)
        return "wrong", "accepted an iteration count outside [1, 64]"
    g = torch.Generator().manual_seed(5)
    if parts[2] == "valid":
        dt = getattr(torch, parts[3])
        op, twin, args = OPS[name](g, dt)
        return _op_outcome(op, twin, args, 2e-4 if dt == torch.float32 else 1e-9)
    arg, how, dt = parts[2], parts[3], getattr(torch, parts[4])
    op, twin, args = OPS[name](g, dt)
    m = _mutate_tensor(args[arg], how, g)
    if m is None:
        return "skip", ""
    args[arg] = m
    return _op_outcome(op, twin, args, 2e-3 if how.startswith("dtype:") or dt == torch.float32 else 1e-9)


def all_case_ids():
    return raw_case_ids() + op_case_ids() + hypothesis_case_ids()


def run_case(case_id):
    parts = case_id.split("|")
    try:
        if parts[0] == "raw":
            return _run_raw(parts)
        if parts[0] == "hyp":
            return _run_hyp(parts)
        return _run_op(parts)
    except Exception as e:  # anything not in CLEAN is a finding
        return "unclean", "".join(traceback.format_exception_only(type(e), e)).strip()


# ---------------------------------------------------------------------------
# property-based cases (hypothesis): random shapes and values, C vs twin
# ---------------------------------------------------------------------------

def _hyp_settings():
    from hypothesis import HealthCheck, settings

    # derandomized and without an example database: reproducible, writes no files
    return settings(max_examples=40, derandomize=True, database=None, deadline=None,
                    suppress_health_check=list(HealthCheck))


def _hyp_boxes(st, max_n=12):
    coord = st.one_of(st.integers(-5, 40).map(float), st.floats(-50, 50, allow_nan=False, width=32))
    return st.lists(st.tuples(coord, coord, coord, coord), min_size=0, max_size=max_n)


def _hyp_box_ops():
    from hypothesis import given
    from hypothesis import strategies as st

    @_hyp_settings()
    @given(a=_hyp_boxes(st), b=_hyp_boxes(st), f32=st.booleans(), thr=st.floats(0, 1), seed=st.integers(0, 99))
    def prop(a, b, f32, thr, seed):
        dt = torch.float32 if f32 else torch.float64
        ta = torch.tensor(a, dtype=dt).reshape(-1, 4)
        tb = torch.tensor(b, dtype=dt).reshape(-1, 4)
        assert _agree(ops.box_iou(ta, tb), ref_boxes.box_iou(ta, tb), 1e-6)
        n = min(len(ta), len(tb))
        assert _agree(ops.box_iou(ta[:n], tb[:n], aligned=True), ref_boxes.box_iou(ta[:n], tb[:n], aligned=True),
                      1e-6)
        assert _agree(ops.diou_loss(ta[:n], tb[:n], reduction="none"),
                      ref_boxes.diou_loss(ta[:n], tb[:n], reduction="none"), 1e-4 if f32 else 1e-9)
        scores = torch.rand(len(ta), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        scores = (scores * 4).round()  # ties
        assert torch.equal(ops.nms(ta, scores, thr), ref_boxes.nms(ta, scores, thr))
        assert _agree(ops.assign_max_iou(ta, tb), ref_assign.assign_max_iou(ta, tb), 0.0)

    prop()


def _hyp_curve():
    from hypothesis import given
    from hypothesis import strategies as st

    @_hyp_settings()
    @given(b=st.integers(0, 3), h=st.integers(0, 6), w=st.integers(0, 6), it=st.integers(1, 12),
           per=st.booleans(), f32=st.booleans(), scale=st.sampled_from([1.0, 3.0, 1e20]), seed=st.integers(0, 99))
    def prop(b, h, w, it, per, f32, scale, seed):
        g = torch.Generator().manual_seed(seed)
        dt = torch.float32 if f32 else torch.float64
        x = (torch.rand(b, 3, h, w, generator=g, dtype=dt) - 0.2) * scale
        A = -torch.rand(b, 3 * it if per else 3, h, w, generator=g, dtype=dt)
        assert _agree(ops.curve(x, A, it, return_half=True), ref_curve.curve(x, A, it, return_half=True),
                      1e-4 if f32 else 1e-9)

    prop()


def _hyp_losses():
    from hypothesis import given
    from hypothesis import strategies as st

    @_hyp_settings()
    @given(b=st.integers(1, 2), h=st.integers(4, 20), w=st.integers(4, 20), ps=st.integers(1, 4),
           pe=st.integers(1, 4), bad=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**6),
                                                        st.sampled_from([float("nan"), float("inf"), -float("inf")])),
                                              max_size=3), seed=st.integers(0, 99))
    def prop(b, h, w, ps, pe, bad, seed):
        g = torch.Generator().manual_seed(seed)
        y, i = torch.rand(b, 3, h, w, generator=g, dtype=torch.float64), torch.rand(b, 3, h, w, generator=g,
                                                                                    dtype=torch.float64)
        a = -torch.rand(b, 6, h, w, generator=g, dtype=torch.float64)
        for which, pos, val in bad:
            t = (y, i, a)[which]
            t.view(-1)[pos % t.numel()] = val
        outs = []
        for impl in ("c", "reference"):
            yy, ii, aa = (t.clone().requires_grad_() for t in (y, i, a))
            total, terms = ops.zero_dce_losses(yy, ii, aa, spa_pool=ps, exp_pool=pe, impl=impl)
            total.backward()
            outs.append([total.detach()] + [terms[k].detach() for k in sorted(terms)] + [yy.grad, ii.grad, aa.grad])
        assert _agree(outs[0], outs[1], 1e-7)

    prop()


def _hyp_wider():
    import warnings

    from hypothesis import given
    from hypothesis import strategies as st

    from tasklle.eval import wider

    gt = _tiny_gt()
    score = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 0.5, 1.0, 1e308, -1e308, 5e-324]),
                      st.floats(-1e300, 1e300))
    row = st.tuples(st.integers(-5, 120), st.integers(-5, 120), st.integers(-2, 40), st.integers(-2, 40), score)
    preds = st.lists(st.lists(row, max_size=6), min_size=3, max_size=3)

    @_hyp_settings()
    @given(rows=preds, iou=st.sampled_from([0.3, 0.5, 1.0]))
    def prop(rows, iou):
        mapping = {k: np.array(r, dtype=float).reshape(-1, 5) for k, r in zip(gt.keys(), rows)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = wider.evaluate(mapping, gt, iou_thresh=iou, impl="c")
            r = wider.evaluate(mapping, gt, iou_thresh=iou, impl="reference")
        for s in wider.SETTINGS:
            assert (math.isnan(c[s]) and math.isnan(r[s])) or abs(c[s] - r[s]) < 1e-9, (s, c[s], r[s])
            assert np.array_equal(c["curves"][s]["true_positives"], r["curves"][s]["true_positives"])

    prop()


HYPOTHESIS_CASES = {"box_ops": _hyp_box_ops, "curve": _hyp_curve, "losses": _hyp_losses, "wider": _hyp_wider}


def hypothesis_case_ids():
    return [f"hyp|{name}" for name in HYPOTHESIS_CASES]


def _run_hyp(parts):
    try:
        HYPOTHESIS_CASES[parts[1]]()
    except AssertionError as e:
        return "wrong", f"hypothesis counterexample: {e}"[:500]
    return "ok", "40 generated examples agree with the twin"
