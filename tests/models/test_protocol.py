"""The detector protocol: the shipped detectors follow it; anything else is refused by name."""
import pytest
import torch

from tasklle.models.protocol import Detector, check_detector


def test_shipped_tinaface_follows_the_protocol():
    from tasklle.models import TinaFace

    det = TinaFace.shipped()
    assert isinstance(det, Detector)
    assert check_detector(det) is det
    assert det.freeze() is det


class _NoDetect(torch.nn.Module):
    def loss(self, images, targets):
        return images.sum(), {}

    def freeze(self):
        return self


class _NotAModule:
    def loss(self, images, targets):
        return 0.0, {}

    def detect(self, images, **kw):
        return []

    def freeze(self):
        return self


def test_missing_methods_are_named():
    with pytest.raises(TypeError, match="detector protocol.*no detect"):
        check_detector(_NoDetect())
    with pytest.raises(TypeError, match="judge .*no loss, detect, freeze"):
        check_detector(object(), name="judge")


def test_a_non_module_is_refused():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        check_detector(_NotAModule())
