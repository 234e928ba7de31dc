"""The one image checker (tasklle._checks.check_images) and its order, the same
from every caller: type (TypeError) -> layout (ValueError) -> dtype
(TypeError) -> empty (ValueError) -> non-finite (ValueError, when asked)."""
import numpy as np
import pytest
import torch

from tasklle._checks import check_images
from tasklle.models import DCENet, ZeroDCEPP
from tasklle.models.retinaface import RetinaFace
from tasklle.models.tinaface import TinaFace
from tasklle.noise import add_noise
from tasklle.ops import zero_dce_losses


def test_order_and_messages():
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor \(B, 3, H, W\), got ndarray"):
        check_images(np.zeros((1, 3, 4, 4)), "x")
    # a wrong layout is reported before a wrong dtype, and a wrong dtype before emptiness
    with pytest.raises(ValueError, match=r"x must be \(B, 3, H, W\), got shape \(3, 4, 4\)"):
        check_images(torch.zeros(3, 4, 4, dtype=torch.uint8), "x")
    with pytest.raises(TypeError, match="x must have a floating point dtype, got torch.uint8"):
        check_images(torch.zeros(0, 3, 4, 4, dtype=torch.uint8), "x")
    with pytest.raises(ValueError, match="x must be non-empty"):
        check_images(torch.zeros(1, 3, 0, 4), "x")
    nan = torch.full((1, 3, 2, 2), float("nan"))
    assert check_images(nan, "x") is nan  # finiteness only when the caller asks
    with pytest.raises(ValueError, match="x must be finite"):
        check_images(nan, "x", finite=True)
    with pytest.raises(ValueError, match=r"a must be \(B, C, H, W\)"):
        check_images(torch.zeros(2, 2), "a", channels=None)
    assert check_images(torch.zeros(1, 5, 2, 2), "a", channels=None).shape[1] == 5
    with pytest.raises(ValueError, match=r"image must be \(3, H, W\)"):
        check_images(torch.zeros(1, 3, 2, 2), "image", batched=False)


# one input that is wrong twice (3-D and integer): every caller reports the layout first
_BAD = torch.zeros(3, 16, 16, dtype=torch.uint8)


@pytest.mark.parametrize("call", [
    lambda: ZeroDCEPP()(_BAD),
    lambda: DCENet()(_BAD),
    lambda: RetinaFace().eval()(_BAD),
    lambda: TinaFace.lite().eval()(_BAD),
    lambda: zero_dce_losses(_BAD, _BAD, torch.zeros(1, 3, 16, 16)),
    lambda: add_noise(_BAD[None], "lednet", seed=0),
], ids=["ZeroDCEPP", "DCENet", "RetinaFace", "TinaFace", "zero_dce_losses", "add_noise"])
def test_every_caller_raises_the_same_for_the_same_bad_input(call):
    with pytest.raises(ValueError, match="got shape"):
        call()
