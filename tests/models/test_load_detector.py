"""load_detector: shipped names, files told apart by their contents, modules checked
against the detector protocol, and clear errors."""
import pytest
import torch

from tasklle.models import RetinaFace, TinaFace, load_detector


def _frozen(det):
    return not det.training and not any(p.requires_grad for p in det.parameters())


def test_shipped_names():
    t = load_detector("tinaface-lite-demo")
    r = load_detector("retinaface-mobilenet0.25")
    assert isinstance(t, TinaFace) and isinstance(r, RetinaFace)
    assert _frozen(t) and _frozen(r)
    assert isinstance(load_detector(), TinaFace)


def test_files_by_contents(tmp_path):
    torch.manual_seed(0)
    r = RetinaFace("mobilenet0.25")
    r.save(tmp_path / "ours_r.pt")
    t = TinaFace.lite()
    t.save(tmp_path / "ours_t.pt")
    torch.save({"module." + k: v for k, v in r.state_dict().items()}, tmp_path / "biubug6.pth")
    torch.save(t.state_dict(), tmp_path / "vedadet_like.pth")
    for name, cls in (("ours_r.pt", RetinaFace), ("ours_t.pt", TinaFace), ("biubug6.pth", RetinaFace)):
        det = load_detector(str(tmp_path / name))
        assert isinstance(det, cls) and _frozen(det)
    same = load_detector(biubug6=tmp_path / "biubug6.pth")
    for k, v in r.state_dict().items():
        assert torch.equal(same.state_dict()[k], v)
    # a vedadet state_dict is the full model: a lite one is refused by shape, naming the file
    with pytest.raises(ValueError, match="vedadet_like.pth"):
        load_detector(str(tmp_path / "vedadet_like.pth"))


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_detector(str(tmp_path / "missing.pt"))
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="neither"):
        load_detector(str(tmp_path / "other.pt"))
    with pytest.raises(ValueError, match="give one of"):
        load_detector("tinaface-lite-demo", biubug6="x.pth")
    with pytest.raises(TypeError, match="detector protocol"):
        load_detector(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="detector must be"):
        load_detector(3.5)
