"""Building blocks of RetinaFace (biubug6/Pytorch_Retinaface ``models/net.py``).

Every block is an ``nn.Sequential`` whose indices are biubug6's, so the
state-dict keys match its checkpoints: ``conv_bn`` = [0 conv 3x3, 1 BN,
2 LeakyReLU], ``conv_bn_no_relu`` = [0 conv 3x3, 1 BN], ``conv_bn1x1`` =
[0 conv 1x1, 1 BN, 2 LeakyReLU], ``conv_dw`` = [0 depthwise 3x3, 1 BN,
2 LeakyReLU, 3 pointwise 1x1, 4 BN, 5 LeakyReLU]. Convolutions have no bias.

``folded=True`` builds the same blocks with BatchNorm folded into the
convolution: the conv gets a bias and the BN slot holds ``nn.Identity``
(keys ``...0.weight``, ``...0.bias``; the index layout stays biubug6's).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that always normalises with its running statistics.

    RetinaFace is used here as a frozen, pretrained detector: its BN layers
    keep eval semantics even when a trainer calls ``.train()`` on everything,
    so a batch of enhanced images never changes what the detector computes
    (and the running statistics are never updated). Same parameters, buffers
    and state-dict keys as ``nn.BatchNorm2d`` (eps 1e-5, as biubug6 / torchvision).
    """

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def conv_norm(inp, oup, kernel, stride=1, padding=0, groups=1, folded=False):
    """[conv (no bias), FrozenBatchNorm2d], or [conv with bias, Identity] when folded."""
    conv = nn.Conv2d(inp, oup, kernel, stride, padding, groups=groups, bias=folded)
    return [conv, nn.Identity() if folded else FrozenBatchNorm2d(oup)]


def act(leaky):
    """LeakyReLU with slope ``leaky`` (biubug6 uses LeakyReLU(0) as its ReLU)."""
    return nn.LeakyReLU(negative_slope=leaky, inplace=True)


def conv_bn(inp, oup, stride=1, leaky=0.0, folded=False):
    return nn.Sequential(*conv_norm(inp, oup, 3, stride, 1, folded=folded), act(leaky))


def conv_bn_no_relu(inp, oup, stride=1, folded=False):
    return nn.Sequential(*conv_norm(inp, oup, 3, stride, 1, folded=folded))


def conv_bn1x1(inp, oup, stride=1, leaky=0.0, folded=False):
    return nn.Sequential(*conv_norm(inp, oup, 1, stride, 0, folded=folded), act(leaky))


def conv_dw(inp, oup, stride, leaky=0.1, folded=False):
    return nn.Sequential(*conv_norm(inp, inp, 3, stride, 1, groups=inp, folded=folded), act(leaky),
                         *conv_norm(inp, oup, 1, 1, 0, folded=folded), act(leaky))


@torch.no_grad()
def fold_conv_bn(conv, bn):
    """(weight, bias) of the conv equal to ``bn(conv(x))`` in eval semantics:
    w' = w * g / sqrt(var + eps) per output channel, b' = beta + (b - mean) * g / sqrt(var + eps)
    (computed in float64, cast back)."""
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    w = conv.weight.double() * scale.view(-1, 1, 1, 1)
    b0 = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    b = bn.bias.double() + (b0 - bn.running_mean.double()) * scale
    return w.to(conv.weight.dtype), b.to(conv.weight.dtype)


def fold_module(module):
    """Fold in place every FrozenBatchNorm2d that directly follows a Conv2d among
    the children of one parent, in registration order (every block of this
    package registers a conv right before its BN). Returns the number folded."""
    n = 0
    for parent in list(module.modules()):
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, FrozenBatchNorm2d):
                w, bias = fold_conv_bn(conv, bn)
                new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                                conv.dilation, conv.groups, bias=True).to(device=w.device, dtype=w.dtype)
                with torch.no_grad():
                    new.weight.copy_(w)
                    new.bias.copy_(bias)
                new.weight.requires_grad_(conv.weight.requires_grad)
                new.bias.requires_grad_(conv.weight.requires_grad)
                parent._modules[a] = new
                parent._modules[b] = nn.Identity()
                n += 1
    return n
