"""DCE-Net, the curve estimator of Zero-DCE.

Reference: C. Guo, C. Li, J. Guo, C. C. Loy, J. Hou, S. Kwong, R. Cong,
"Zero-Reference Deep Curve Estimation for Low-Light Image Enhancement",
CVPR 2020. Layout as in the official code.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ..ops._common import check_impl
from ..ops.curve import curve
from .._checks import check_images
from ._dce_common import add_dce_layers, init_conv_weights, load_state_strict, read_checkpoint, save_model

FORMAT = "tasklle.zero_dce/1"  # the checkpoint written by DCENet.save


def _conv3x3(cin, cout):
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=True)


class DCENet(nn.Module):
    r"""Zero-DCE: seven 3x3 convolutions (32 channels, stride 1, padding 1, bias)
    with the symmetric skips ``conv5(cat(x3, x4))``, ``conv6(cat(x2, x5))``,
    ``conv7(cat(x1, x6))``, ReLU after conv1-6 and tanh after conv7, which
    outputs ``3 * iterations`` = 24 channels: one 3-channel curve map per
    iteration (split in channel order, map n used in iteration n) of
    ``x <- x + A_n (x^2 - x)`` (:func:`tasklle.ops.curve`, the C core on CPU).
    79,416 parameters. Any input size (the net is fully convolutional).

    ``forward(x)`` returns ``(enhanced_half, enhanced, curve_maps)`` in the
    official order: the image after ``iterations // 2`` (4) and after all
    ``iterations`` (8) steps, both (B, 3, H, W), and the maps (B, 24, H, W).
    (``ZeroDCEPP`` returns ``(enhanced, curve_maps)``.)

    Args:
        iterations: curve steps (8 in the paper).
        channels: hidden width (32).
        impl: the curve op's ('auto': C on CPU; 'c'; 'reference': the pure-PyTorch
            twin), by the ops' one rule (``tasklle.ops._common.use_c``).

    Shape:
        - x: (B, 3, H, W) in [0, 1]
        - outputs: (B, 3, H, W), (B, 3, H, W), (B, 3*iterations, H, W)
    """

    def __init__(self, iterations=8, channels=32, impl="auto"):
        super().__init__()
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be an int >= 1, got {iterations!r}")
        self.iterations = iterations
        self.impl = check_impl(impl)  # the op resolves it per call, so `model.impl` can be switched
        add_dce_layers(self, _conv3x3, 3, channels, 3 * iterations)

    def curve_maps(self, x):
        """The (B, 3*iterations, H, W) curve maps in [-1, 1] for (B, 3, H, W) x."""
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        return torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))

    def forward(self, x):
        check_images(x, "x")
        maps = self.curve_maps(x)
        enhanced, half = curve(x, maps, self.iterations, return_half=True, impl=self.impl)
        return half, enhanced, maps

    def init_weights(self, std=0.02):
        """Conv weights ~ N(0, std) as in the method (biases keep their default init)."""
        return init_conv_weights(self, std)

    @classmethod
    def from_official(cls, path, **kwargs):
        """Load an official Zero-DCE checkpoint (a state_dict with keys
        ``e_conv{1..7}.{weight,bias}``) or a tasklle checkpoint holding one, by
        key name (torch.load with weights_only=True). Raises ValueError listing
        missing / unexpected keys."""
        state, _ = read_checkpoint(path)
        return load_state_strict(cls(**kwargs), state, str(path)).eval()

    load = from_official

    def save(self, path, **extra):
        """Save ``{'format': 'tasklle.zero_dce/1', 'kind': 'DCENet', **extra, 'model': state_dict}``
        atomically (:meth:`load` reads it back). Returns ``path``."""
        return save_model(self, path, FORMAT, **extra)

    def extra_repr(self):
        return f"iterations={self.iterations}, impl={self.impl!r}"
