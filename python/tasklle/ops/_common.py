"""The one rule every C-backed op uses to pick its path and to hand memory to C.

- ``c_path(name, *tensors)``: True when the C core has ``name`` and every given
  tensor (None entries are skipped) is a CPU float32/float64 tensor. Any other
  device -- CUDA, MPS, meta, ... -- or dtype runs the pure-PyTorch twin, so
  every op routes devices the same way.
- ``c_array(t)``: the NumPy view the C core reads: detached, conjugate and
  negative views resolved (``torch._neg_view`` / ``.conj()`` set a bit that
  NumPy cannot see), C-contiguous. Shares memory when nothing had to change.
"""
import torch

from .. import _C

C_DTYPES = (torch.float32, torch.float64)


def c_path(name, *tensors):
    """True when ``_C.<name>`` exists and every non-None tensor is CPU float32/float64."""
    return hasattr(_C, name) and all(t is None or (t.device.type == "cpu" and t.dtype in C_DTYPES)
                                     for t in tensors)


def resolved(t):
    """``t`` detached, with conjugate/negative bits resolved, C-contiguous (still a tensor)."""
    return t.detach().resolve_conj().resolve_neg().contiguous()


def c_array(t):
    """The C-contiguous NumPy array of a CPU tensor, as the C core must read it."""
    return resolved(t).numpy()
