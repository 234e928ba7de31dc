"""tasklle.enhance and enhance_folder: every input kind, model resolution,
folder trees with corrupt files, atomic and restartable output."""
import numpy as np
import pytest
import torch
from PIL import Image

import tasklle
from tasklle.enhancement import SHIPPED, enhance, enhance_folder, load_model
from tasklle.io import save_checkpoint
from tasklle.models import DCENet, ZeroDCEPP


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ZeroDCEPP().init_weights(0.05).eval()


def _direct(net, x):
    with torch.no_grad():
        return net(x)[0].clamp(0, 1)


def test_every_input_kind_round_trips(net, tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 17, 23, generator=g) * 0.3
    expect = _direct(net, x)
    out = tasklle.enhance(x, model=net, batch_size=1)  # the package-level name works
    torch.testing.assert_close(out, expect)
    torch.testing.assert_close(enhance(x[0], model=net), expect[0])
    arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    out_arr = enhance(arr, model=net)
    assert out_arr.dtype == np.uint8 and out_arr.shape == arr.shape
    out_f = enhance(arr.astype(np.float32) / 255, model=net)
    assert out_f.dtype == np.float32 and out_f.shape == arr.shape
    np.testing.assert_allclose(out_f, out_arr / 255.0, atol=1 / 255 + 1e-6)
    pil = Image.fromarray(arr)
    out_pil = enhance(pil, model=net)
    assert isinstance(out_pil, Image.Image) and out_pil.size == pil.size
    pil.save(tmp_path / "x.png")
    out_path = enhance(tmp_path / "x.png", model=net)
    assert out_path.shape == (3, 17, 23)
    outs = enhance([x[0], x[1, :, :9, :11]], model=net)
    assert [tuple(o.shape) for o in outs] == [(3, 17, 23), (3, 9, 11)]
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_model_resolution(net, tmp_path):
    if not SHIPPED.is_file():
        with pytest.raises(ValueError, match="weights"):
            enhance(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="either model or weights"):
        enhance(torch.rand(3, 8, 8), model=net, weights=tmp_path / "w.pt")
    with pytest.raises(TypeError, match="nn.Module"):
        enhance(torch.rand(3, 8, 8), model="zero-dce++")
    with pytest.raises(FileNotFoundError):
        enhance(torch.rand(3, 8, 8), weights=tmp_path / "absent.pt")
    save_checkpoint(tmp_path / "pp.pt", {"format": "tasklle.zero_dce_pp/1", "scale_factor": 2,
                                         "model": net.state_dict()})
    m = load_model(weights=tmp_path / "pp.pt")
    assert isinstance(m, ZeroDCEPP) and m.scale_factor == 2
    dce = DCENet().init_weights()
    torch.save(dce.state_dict(), tmp_path / "dce.pth")
    assert isinstance(load_model(weights=tmp_path / "dce.pth"), DCENet)
    y = enhance(torch.rand(1, 3, 12, 12) * 0.2, weights=tmp_path / "dce.pth")
    with torch.no_grad():
        assert y.shape == (1, 3, 12, 12)
    torch.save({"junk": torch.zeros(2)}, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="missing keys"):
        load_model(weights=tmp_path / "junk.pth")


def test_official_weights_any_size(zero_dce_pp_weights):
    x = torch.rand(1, 3, 50, 37) * 0.2  # not a multiple of 12: never cropped
    y = enhance(x, weights=zero_dce_pp_weights, official=True)
    assert y.shape == x.shape and y.mean() > x.mean()


def _tree(root):
    rng = np.random.default_rng(1)
    (root / "ev" / "deep").mkdir(parents=True)
    for rel, (h, w) in {"a.png": (20, 30), "ev/b.jpg": (25, 19), "ev/deep/c.png": (20, 30),
                        "ev/deep/d.bmp": (8, 8)}.items():
        Image.fromarray((rng.random((h, w, 3)) * 60).astype(np.uint8)).save(root / rel)
    (root / "ev" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (root / "notes.txt").write_text("not an image")


def test_enhance_folder_tree(net, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    res = enhance_folder(src, dst, model=net, batch_size=2, show_progress=False)
    assert res["written"] == 4 and len(res["failed"]) == 1 and "broken.png" in res["failed"][0][0]
    made = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    assert made == ["a.png", "ev/b.jpg", "ev/deep/c.png", "ev/deep/d.bmp"]  # no temporary files left
    out = np.asarray(Image.open(dst / "ev/deep/c.png"))
    assert out.shape == (20, 30, 3)
    expect = _direct(net, tasklle.io.read_image(src / "ev/deep/c.png")[None])[0]
    np.testing.assert_allclose(out / 255.0, expect.permute(1, 2, 0).numpy(), atol=0.5 / 255 + 1e-6)
    # a rerun skips finished outputs; --overwrite redoes them
    again = enhance_folder(src, dst, model=net, show_progress=False)
    assert again["written"] == 0 and again["existing"] == 4
    assert enhance_folder(src, dst, model=net, overwrite=True, show_progress=False)["written"] == 4
    # one file to a file name, or into a folder
    enhance_folder(src / "a.png", tmp_path / "one.png", model=net, show_progress=False)
    enhance_folder(src / "a.png", tmp_path / "into", model=net, show_progress=False)
    assert (tmp_path / "one.png").is_file() and (tmp_path / "into" / "a.png").is_file()
    with pytest.raises(ValueError, match="differ"):
        enhance_folder(src, src, model=net, show_progress=False)
    with pytest.raises(FileNotFoundError):
        enhance_folder(tmp_path / "nope", dst, model=net, show_progress=False)
