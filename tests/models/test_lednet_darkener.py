"""LEDNet's ConditionZeroDCE: loading by LEDNet's key names, the forward against
an independent functional version written here from the description, tiling,
and the generation pipeline's arithmetic."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tasklle.models import ConditionZeroDCE
from tasklle.models.lednet_darkener import opencv_lightness

# LEDNet's layer names and (in, out) channels, written from the description of the architecture
C = 256
LAYERS = {"e_conv1": (1, C), "e_conv2": (C, C), "e_conv3": (C, C), "e_conv4": (C, C), "e_conv5": (3 * C, C),
          "e_conv6": (3 * C, C), "e_conv7": (3 * C, 10), "e_conv_e1": (1, C), "e_conv_e2": (C, C),
          "e_conv_e3": (C, C), "e_conv_e4": (C, C)}


def random_state(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, (cin, cout) in LAYERS.items():
        # a spread large enough that the tanh maps are far from 0 and the curve does something
        std = (2.0 / (cin * 9)) ** 0.5
        state[f"{name}.weight"] = (torch.randn(cout, cin, 3, 3, generator=g, dtype=torch.float64) * std).to(dtype)
        state[f"{name}.bias"] = (torch.randn(cout, generator=g, dtype=torch.float64) * 0.05).to(dtype)
    return state


def functional_forward(state, l, e):
    """The network as described: exposure branch, main branch, concatenations, tanh, 10 curve steps."""
    def conv(name, t):
        return F.conv2d(t, state[f"{name}.weight"], state[f"{name}.bias"], stride=1, padding=1)

    e1 = F.relu(conv("e_conv_e1", e))
    e2 = F.relu(conv("e_conv_e2", e1))
    e3 = F.relu(conv("e_conv_e3", e2))
    e4 = F.relu(conv("e_conv_e4", e3))
    x1 = F.relu(conv("e_conv1", l))
    x2 = F.relu(conv("e_conv2", x1))
    x3 = F.relu(conv("e_conv3", x2))
    x4 = F.relu(conv("e_conv4", x3))
    x5 = F.relu(conv("e_conv5", torch.cat([e4, x3, x4], 1)))
    x6 = F.relu(conv("e_conv6", torch.cat([e3, x2, x5], 1)))
    r = torch.tanh(conv("e_conv7", torch.cat([e2, x1, x6], 1)))
    x = l
    for k in range(10):
        x = x + r[:, k:k + 1] * (x * x - x)
    return x


@pytest.fixture(scope="module")
def lednet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lednet") / "ce_zerodce.pth"
    torch.save(random_state(), path)  # a plain state_dict, as LEDNet's release asset
    return path


def test_from_lednet_matches_functional_forward(lednet_file, one_thread):
    model = ConditionZeroDCE.from_lednet(lednet_file, tile=None).double()
    state = {k: v.double() for k, v in torch.load(lednet_file, weights_only=True).items()}
    g = torch.Generator().manual_seed(1)
    l = torch.rand(2, 1, 13, 17, generator=g, dtype=torch.float64)
    e = torch.rand(2, 1, 13, 17, generator=g, dtype=torch.float64) * 0.3
    with torch.no_grad():
        got = model(l, e)
    want = functional_forward(state, l, e)
    assert (want - l).abs().max() > 1e-2  # the curve changed the image: the comparison means something
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # float32, as loaded
    model32 = ConditionZeroDCE.from_lednet(lednet_file, tile=None)
    with torch.no_grad():
        got32 = model32(l.float(), e.float())
    torch.testing.assert_close(got32.double(), want, rtol=0, atol=2e-5)


def test_from_lednet_is_strict(tmp_path):
    state = random_state()
    good = tmp_path / "good.pth"
    torch.save({"module." + k: v for k, v in state.items()}, good)  # DataParallel prefix accepted
    ConditionZeroDCE.from_lednet(good)

    missing = dict(state)
    del missing["e_conv_e3.bias"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="missing keys: e_conv_e3.bias"):
        ConditionZeroDCE.from_lednet(tmp_path / "missing.pth")

    extra = dict(state, **{"e_conv8.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match="unexpected keys: e_conv8.weight"):
        ConditionZeroDCE.from_lednet(tmp_path / "extra.pth")

    shape = dict(state)
    shape["e_conv7.weight"] = torch.zeros(8, 3 * C, 3, 3)
    torch.save(shape, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match="e_conv7.weight"):
        ConditionZeroDCE.from_lednet(tmp_path / "shape.pth")

    with pytest.raises(FileNotFoundError):
        ConditionZeroDCE.from_lednet(tmp_path / "absent.pth")


class _NotATensor:
    pass


def test_from_lednet_refuses_pickled_objects(tmp_path):
    # weights_only=True: arbitrary pickled objects are not loaded
    path = tmp_path / "evil.pth"
    torch.save({"e_conv1.weight": _NotATensor()}, path)
    with pytest.raises(ValueError, match="cannot load checkpoint"):
        ConditionZeroDCE.from_lednet(path)


@pytest.mark.parametrize("tile", [5, 8, 16])
def test_tiled_equals_untiled(lednet_file, tile, one_thread):
    model = ConditionZeroDCE.from_lednet(lednet_file, tile=None).double()
    g = torch.Generator().manual_seed(2)
    l = torch.rand(1, 1, 21, 30, generator=g, dtype=torch.float64)
    e = torch.full_like(l, 0.1)
    e[..., 3:9, 20:27] = l[..., 3:9, 20:27]  # a non-constant map, as around saturated regions
    with torch.no_grad():
        whole = model(l, e)
        model.tile = tile
        tiled = model(l, e)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-12)


def _lightness_np(rgb, swap):
    """L (0..100) of an (H, W, 3) float array: sRGB gamma, OpenCV's Y row, CIE L with OpenCV's constants."""
    x = np.clip(rgb.astype(np.float64), 0, 1)
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    w = np.array([0.212671, 0.715160, 0.072169])
    if swap:
        w = w[::-1]
    y = lin @ w
    return np.where(y > 0.008856, 116 * np.cbrt(y) - 16, 903.3 * y)


@pytest.mark.parametrize("order", ["bgr-as-rgb", "rgb"])
def test_pipeline_arithmetic(lednet_file, order, one_thread):
    """The script's steps on a test image: L, exposure map (saturated pixels keep L/100), net, RGB scaling.
    L is OpenCV's table lookup (tested on its own below); the rest is recomputed here."""
    rng = np.random.default_rng(3)
    img = rng.random((12, 15, 3))
    img[:3, :4] = 1.0  # saturated: L/100 > 0.97
    img[5, 5] = (0.0, 0.0, 1.0)  # pure blue: the channel order matters
    img[6, 6] = 0.0  # black: L = 0, the 1e-8 guard
    E = 0.12
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    L = opencv_lightness(x, order)[0, 0].numpy()
    np.testing.assert_allclose(L, _lightness_np(img, swap=(order == "bgr-as-rgb")), atol=0.25)
    assert (L[:3, :4] / 100 > 0.97).all()
    lf = L / 100
    emap = np.where(lf > 0.97, lf, E)
    state = {k: v.double() for k, v in torch.load(lednet_file, weights_only=True).items()}
    with torch.no_grad():
        low = functional_forward(state, torch.from_numpy(lf)[None, None], torch.from_numpy(emap)[None, None])
    low_l = low[0, 0].numpy() * 100
    want = np.clip(img * (low_l / (L + 1e-8))[..., None], 0, 1)

    model = ConditionZeroDCE.from_lednet(lednet_file, tile=None, channel_order=order).double()
    got = model.darken(x, E)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    assert np.all(got[6, 6] == 0)


def test_channel_order_quirk():
    blue = torch.zeros(1, 3, 1, 1)
    blue[0, 2] = 1.0
    for method, tol in (("formula", 1e-4), ("table", 100 / 2 ** 14)):  # the table rounds to 100/2^14
        quirk = opencv_lightness(blue, "bgr-as-rgb", method)  # blue weighted as red
        true = opencv_lightness(blue, "rgb", method)
        assert quirk.item() == pytest.approx(116 * 0.212671 ** (1 / 3) - 16, abs=tol)
        assert true.item() == pytest.approx(116 * 0.072169 ** (1 / 3) - 16, abs=tol)
    with pytest.raises(ValueError, match="channel_order"):
        opencv_lightness(blue, "bgr")
    with pytest.raises(ValueError, match="method"):
        opencv_lightness(blue, "rgb", "skimage")


def test_table_lightness_follows_the_formula():
    """At the table's grid points the interpolation returns the entry (the formula rounded to 100/2^14);
    between them it stays within OpenCV's interpolation error of the formula."""
    g = torch.arange(33, dtype=torch.float32) / 32
    r, q, p = torch.meshgrid(g, g, g, indexing="ij")
    grid = torch.stack([r, q, p])[None].reshape(1, 3, 33, 33 * 33)
    step = 100 / 2 ** 14
    for order in ("rgb", "bgr-as-rgb"):
        t = opencv_lightness(grid, order, "table")
        f = opencv_lightness(grid.double(), order, "formula").float()
        assert (t - f).abs().max() <= step * 0.5 + 1e-4
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    d = opencv_lightness(x, "rgb", "table") - opencv_lightness(x.double(), "rgb", "formula").float()
    assert d.abs().max() < 0.25 and d.abs().mean() < 0.15


def test_lightness_against_opencv_when_available():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    rgb = rng.random((64, 64, 3)).astype(np.float32)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    # the script: a BGR array converted with COLOR_RGB2LAB
    want_quirk = cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_RGB2LAB)[..., 0]
    want_rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 0]
    step = 100 / 2 ** 14
    for order, want in (("bgr-as-rgb", want_quirk), ("rgb", want_rgb)):
        # the table: OpenCV's own numbers, but for rare one-step differences of its entries' rounding
        d = np.abs(opencv_lightness(x, order)[0, 0].numpy() - want)
        assert d.max() <= step * 1.01 and (d > 0).mean() < 0.005
        # the closed formula: within OpenCV's interpolation error
        np.testing.assert_allclose(opencv_lightness(x, order, "formula")[0, 0].numpy(), want, atol=0.25)


def test_argument_errors(lednet_file):
    model = ConditionZeroDCE(channels=4)
    with pytest.raises(ValueError, match="l must be"):
        model(torch.rand(1, 3, 4, 4), torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="e must have"):
        model(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 5))
    with pytest.raises(ValueError, match="exposure"):
        model.darken(torch.rand(1, 3, 4, 4), 1.5)
    with pytest.raises(ValueError, match="tile"):
        ConditionZeroDCE(channels=4, tile=-1)
    with pytest.raises(ValueError, match="channel_order"):
        ConditionZeroDCE(channels=4, channel_order="bgr")
