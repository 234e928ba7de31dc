"""enhance_folder decodes and encodes on I/O threads and read_image /
to_uint8_hwc use fewer passes: the files written must be byte-for-byte those
of the one-image-after-the-other loop with the original conversions."""
import numpy as np
import pytest
import torch
from PIL import Image

from tasklle.enhancement import _run, enhance_folder
from tasklle.io import read_image, to_uint8_hwc, write_image
from tasklle.models import ZeroDCEPP


def old_read_image(path):
    with Image.open(path) as im:
        im.load()
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def old_to_uint8_hwc(image):
    image = np.asarray(image.detach().cpu().float().numpy() if isinstance(image, torch.Tensor) else image,
                       dtype=np.float32)
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def test_read_conversion_matches_torch_for_every_byte(tmp_path):
    vals = np.arange(256, dtype=np.uint8)
    img = np.stack([vals, vals[::-1], np.roll(vals, 7)], -1).reshape(16, 16, 3)
    Image.fromarray(img).save(tmp_path / "all.png")
    new, old = read_image(tmp_path / "all.png"), old_read_image(tmp_path / "all.png")
    assert torch.equal(new, old)
    assert new.dtype == old.dtype and new.stride() == old.stride()  # the layout the model sees is unchanged


def test_to_uint8_matches_original_near_every_rounding_edge():
    # every float32 within 200 ulps of each edge (k - 0.5) / 255 and of 0 and 1,
    # plus random values, NaN-free out-of-range values and both ends
    edges = np.array([(k - 0.5) / 255.0 for k in range(1, 256)] + [0.0, 1.0], dtype=np.float32)
    bits = edges.view(np.int32)[:, None] + np.arange(-200, 201, dtype=np.int32)[None, :]
    vals = bits.ravel().view(np.float32)
    rng = np.random.default_rng(0)
    vals = np.concatenate([vals, rng.random(300_000, dtype=np.float32), np.float32([-3.0, -0.0, 2.0, 1e30])])
    vals = vals[: len(vals) // 3 * 3].reshape(3, 1, -1)
    with np.errstate(invalid="ignore"):  # the bit patterns below -0.0 are NaNs: handled alike too
        new = to_uint8_hwc(vals)
        assert np.array_equal(new, old_to_uint8_hwc(vals))
    assert new.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("io_workers,batch_size", [(1, 2), (3, 3)])
def test_enhance_folder_bytes_identical_to_sequential_loop(tmp_path, io_workers, batch_size):
    torch.manual_seed(0)
    net = ZeroDCEPP(scale_factor=4).init_weights(0.05).eval()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = []
    for i, (h, w) in enumerate([(37, 52), (37, 52), (20, 33), (37, 52), (64, 48), (20, 33), (37, 52)]):
        ext = ".jpg" if i % 2 else ".png"
        name = ("sub/" if i % 3 == 0 else "") + f"im{i}{ext}"
        Image.fromarray((rng.random((h, w, 3)) * 90).astype(np.uint8)).save(src / name, quality=90)
        names.append(name)
    (src / "broken.jpg").write_bytes(b"not a jpeg")

    # the loop as it was: chunks of batch_size in sorted order, one forward per
    # group of equal sizes in the chunk, then each output written
    ref = tmp_path / "ref"
    order = sorted(names, key=lambda n: src / n)
    for k in range(0, len(order), batch_size):
        groups = {}
        for name in order[k:k + batch_size]:
            x = old_read_image(src / name)
            groups.setdefault(tuple(x.shape), []).append((x, name))
        for items in groups.values():
            ys = _run(net, torch.stack([x for x, _ in items]), batch_size)
            for y, (_, name) in zip(ys, items):
                im = Image.fromarray(old_to_uint8_hwc(y))
                (ref / name).parent.mkdir(parents=True, exist_ok=True)
                if name.endswith(".jpg"):
                    im.save(ref / name, format="JPEG", quality=95)
                else:
                    im.save(ref / name, format="PNG")

    out = tmp_path / "out"
    res = enhance_folder(src, out, model=net, batch_size=batch_size, io_workers=io_workers, show_progress=False)
    assert res["written"] == len(names)
    assert [p for p, _ in res["failed"]] == [str(src / "broken.jpg")]
    assert res["outputs"] == [str(out / n) for n in sorted(names, key=lambda n: src / n)]
    for name in names:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def test_write_image_unchanged_bytes(tmp_path):
    x = torch.rand(3, 31, 45)
    write_image(tmp_path / "a.png", x)
    Image.fromarray(old_to_uint8_hwc(x)).save(tmp_path / "b.png", format="PNG")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_io_workers_validated(tmp_path):
    (tmp_path / "s").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "s" / "a.png")
    with pytest.raises(ValueError, match="io_workers"):
        enhance_folder(tmp_path / "s", tmp_path / "o", model=ZeroDCEPP(), io_workers=0, show_progress=False)
