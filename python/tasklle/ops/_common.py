"""The one rule every C-backed op uses to pick its path and to hand memory to C.

- ``use_c(op, impl, **tensors)`` decides C core vs pure-PyTorch twin, the same
  way for every op in ``tasklle.ops``:

  1. ``impl`` is 'auto' (the default), 'c' or 'reference'; 'auto' takes the
     environment variable ``TASKLLE_IMPL`` when it is set (the benchmarks set
     ``TASKLLE_IMPL=reference`` to time the pure-PyTorch path).
  2. 'reference' runs the twin.
  3. A tensor on any device other than the CPU (CUDA, MPS, meta, ...) runs the
     twin under 'auto' and is a ValueError under 'c'.
  4. On the CPU, a tensor whose dtype the C core does not have (anything but
     float32/float64) is a TypeError naming the argument -- never a silent
     switch to the slower twin.
  5. Otherwise the C core runs.

  The op checks its arguments (with its twin's checker) before asking, so both
  paths raise the same errors; ``use_c`` only sees tensors that passed.
- ``c_array(t)``: the NumPy view the C core reads: detached, conjugate and
  negative views resolved (``torch._neg_view`` / ``.conj()`` set a bit that
  NumPy cannot see), C-contiguous. Shares memory when nothing had to change.
"""
import os

import torch

C_DTYPES = (torch.float32, torch.float64)
IMPLS = ("auto", "c", "reference")
ENV = "TASKLLE_IMPL"


def check_impl(impl):
    """``impl`` itself ('auto', 'c' or 'reference'); ValueError otherwise."""
    if not isinstance(impl, str) or impl not in IMPLS:
        raise ValueError(f"impl must be 'auto', 'c' or 'reference', got {impl!r}")
    return impl


def resolve_impl(impl="auto"):
    """'c' or 'reference' or 'auto' after applying ``TASKLLE_IMPL`` to 'auto'."""
    check_impl(impl)
    if impl == "auto":
        env = os.environ.get(ENV, "")
        if env:
            if env not in IMPLS:
                raise ValueError(f"the environment variable {ENV} must be 'auto', 'c' or 'reference', got {env!r}")
            impl = env
    return impl


def use_c(op, impl="auto", **tensors):
    """True when ``op`` runs in the C core (the rule in the module doc).

    ``tensors``: the op's tensor arguments by name (None entries are skipped)
    whose device and dtype the C kernel takes as they are."""
    impl = resolve_impl(impl)
    if impl == "reference":
        return False
    given = {k: t for k, t in tensors.items() if t is not None}
    away = [(k, t.device) for k, t in given.items() if t.device.type != "cpu"]
    if away:
        if impl == "c":
            raise ValueError(f"{op}: impl='c' needs CPU tensors, got {away[0][0]} on {away[0][1]} "
                             "(impl='auto' runs the reference twin there)")
        return False
    for k, t in given.items():
        if t.dtype not in C_DTYPES:
            raise TypeError(f"{op}: {k} has dtype {t.dtype}; the C core supports float32 and float64 on CPU "
                            "(convert it, or pass impl='reference' / set TASKLLE_IMPL=reference for the twin)")
    return True


def resolved(t):
    """``t`` detached, with conjugate/negative bits resolved, C-contiguous (still a tensor)."""
    return t.detach().resolve_conj().resolve_neg().contiguous()


def c_array(t):
    """The C-contiguous NumPy array of a CPU tensor, as the C core must read it."""
    return resolved(t).numpy()
