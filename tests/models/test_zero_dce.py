"""DCE-Net (Zero-DCE) and DCE-Net++ (Zero-DCE++): layout, official checkpoints
by key name, output equality with an independent pure-torch formulation of the
official forward, any input size."""
import pytest
import torch
import torch.nn.functional as F

from tasklle.models import DCENet, ZeroDCEPP


pytestmark = pytest.mark.usefixtures("one_thread")


# ---- independent formulations of the official forward (plain F.conv2d on the state_dict) ----

def _official_trunk(layer, x):
    """The official DCE-Net forward: layer(k, t) is layer k; ReLU after 1-6, the symmetric skips, tanh."""
    x1 = F.relu(layer(1, x))
    x2 = F.relu(layer(2, x1))
    x3 = F.relu(layer(3, x2))
    x4 = F.relu(layer(4, x3))
    x5 = F.relu(layer(5, torch.cat([x3, x4], 1)))
    x6 = F.relu(layer(6, torch.cat([x2, x5], 1)))
    return torch.tanh(layer(7, torch.cat([x1, x6], 1)))


def _official_pp(state, x, s):
    def sep(k, t):
        p = f"e_conv{k}."
        t = F.conv2d(t, state[p + "depth_conv.weight"], state[p + "depth_conv.bias"], 1, 1, 1, t.shape[1])
        return F.conv2d(t, state[p + "point_conv.weight"], state[p + "point_conv.bias"])

    xd = x if s == 1 else F.interpolate(x, scale_factor=1 / s, mode="bilinear")  # official downsample
    r = _official_trunk(sep, xd)
    if s != 1:
        r = torch.nn.UpsamplingBilinear2d(scale_factor=s)(r)  # official upsample (align_corners=True)
    y = x
    for _ in range(8):
        y = y + r * (torch.pow(y, 2) - y)
    return y, r


def _official_dce(state, x):
    def conv(k, t):
        return F.conv2d(t, state[f"e_conv{k}.weight"], state[f"e_conv{k}.bias"], 1, 1)

    r = _official_trunk(conv, x)
    rs = torch.split(r, 3, dim=1)
    y = x
    for n in range(8):
        y = y + rs[n] * (torch.pow(y, 2) - y)
        if n == 3:
            half = y
    return half, y, r


def test_parameter_counts_and_official_keys():
    assert sum(p.numel() for p in DCENet().parameters()) == 79416
    assert sum(p.numel() for p in ZeroDCEPP().parameters()) == 10561
    keys = set(ZeroDCEPP().state_dict())
    assert keys == {f"e_conv{k}.{c}.{t}" for k in range(1, 8) for c in ("depth_conv", "point_conv")
                    for t in ("weight", "bias")}
    assert set(DCENet().state_dict()) == {f"e_conv{k}.{t}" for k in range(1, 8) for t in ("weight", "bias")}


@pytest.mark.parametrize("scale, sizes", [
    (1, [(1, 37, 53), (2, 64, 48), (1, 5, 3)]),
    (12, [(1, 96, 120), (2, 48, 36), (1, 144, 12)]),
])
def test_official_weights_reproduce_official_forward(zero_dce_pp_weights, scale, sizes):
    state = torch.load(zero_dce_pp_weights, map_location="cpu", weights_only=True)
    model = ZeroDCEPP.from_official(zero_dce_pp_weights, scale_factor=scale)
    assert not model.training
    g = torch.Generator().manual_seed(1)
    for b, h, w in sizes:
        x = torch.rand(b, 3, h, w, generator=g) * 0.4
        with torch.no_grad():
            y, a = model(x)
            y_ref, a_ref = _official_pp(state, x, scale)
        assert y.shape == x.shape and a.shape == x.shape
        torch.testing.assert_close(a, a_ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)


def test_scale_factor_any_size_never_crops():
    model = ZeroDCEPP(scale_factor=12).init_weights()
    for h, w in [(50, 37), (13, 100), (5, 7), (1, 1)]:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            y, a = model(x)
        assert y.shape == x.shape and a.shape == x.shape
        # documented formulation: floor-size grid, map stretched back to exactly (H, W)
        xd = F.interpolate(x, size=(max(1, h // 12), max(1, w // 12)), mode="bilinear", align_corners=False)
        with torch.no_grad():
            small = ZeroDCEPP(scale_factor=1)
            small.load_state_dict(model.state_dict())
            a_small = small.curve_maps(xd)
        a_expect = F.interpolate(a_small, size=(h, w), mode="bilinear", align_corners=True)
        torch.testing.assert_close(a, a_expect)


def test_dcenet_official_checkpoint_by_key_name(tmp_path):
    g = torch.Generator().manual_seed(2)
    state = {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in DCENet().state_dict().items()}
    path = tmp_path / "Epoch99.pth"
    torch.save({"module." + k: v for k, v in state.items()}, path)  # as saved from nn.DataParallel
    model = DCENet.from_official(path)
    x = torch.rand(2, 3, 23, 31, generator=g)
    with torch.no_grad():
        half, y, maps = model(x)
        half_r, y_r, maps_r = _official_dce(state, x)
    assert maps.shape == (2, 24, 23, 31)
    torch.testing.assert_close(maps, maps_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(half, half_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y, y_r, rtol=1e-5, atol=1e-5)


def test_from_official_errors_name_the_keys(tmp_path):
    state = ZeroDCEPP().state_dict()
    bad = dict(state)
    del bad["e_conv3.point_conv.bias"]
    bad["e_conv8.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"missing keys: e_conv3\.point_conv\.bias.*unexpected keys: e_conv8"):
        ZeroDCEPP.from_official(tmp_path / "bad.pth")
    shaped = dict(state)
    shaped["e_conv7.point_conv.weight"] = torch.zeros(24, 64, 1, 1)
    torch.save(shaped, tmp_path / "shape.pth")
    with pytest.raises(ValueError, match="shape mismatch: e_conv7.point_conv.weight"):
        ZeroDCEPP.from_official(tmp_path / "shape.pth")
    with pytest.raises(ValueError, match="does not match DCENet"):
        DCENet.from_official(tmp_path / "shape.pth")
    with pytest.raises(FileNotFoundError):
        ZeroDCEPP.from_official(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot load"):
        ZeroDCEPP.from_official(tmp_path / "junk.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a dict"):
        ZeroDCEPP.from_official(tmp_path / "list.pth")


def test_load_tasklle_checkpoint_keeps_scale_factor(tmp_path):
    from tasklle.io import save_checkpoint

    m = ZeroDCEPP(scale_factor=4).init_weights()
    save_checkpoint(tmp_path / "c.pt", {"format": "tasklle.zero_dce_pp/1", "scale_factor": 4,
                                        "model": m.state_dict()})
    loaded = ZeroDCEPP.load(tmp_path / "c.pt")
    assert loaded.scale_factor == 4
    x = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], m(x)[0])
    assert ZeroDCEPP.load(tmp_path / "c.pt", scale_factor=1).scale_factor == 1


def test_init_weights_normal_002():
    torch.manual_seed(0)
    m = DCENet()
    bias_before = m.e_conv1.bias.detach().clone()
    m.init_weights(0.02)
    w = torch.cat([p.detach().flatten() for n, p in m.named_parameters() if n.endswith("weight")])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    assert torch.equal(m.e_conv1.bias, bias_before)
    with pytest.raises(ValueError, match="std"):
        m.init_weights(-1)


def test_c_and_reference_curve_paths_agree_and_backprop():
    torch.manual_seed(0)
    for cls in (DCENet, ZeroDCEPP):
        m = cls().init_weights()
        x = torch.rand(2, 3, 21, 19)
        out_c = m(x)
        m.impl = "reference"
        out_r = m(x)
        for a, b in zip(out_c, out_r):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        m.impl = "auto"
        out_c[-2 if cls is DCENet else 0].sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_bad_inputs():
    m = ZeroDCEPP()
    with pytest.raises(ValueError, match="shape"):
        m(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="floating"):
        m(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="scale_factor"):
        ZeroDCEPP(scale_factor=0.5)
    with pytest.raises(ValueError, match="impl"):
        DCENet(impl="cuda")


def test_save_writes_the_trainers_format_bit_for_bit(tmp_path):
    # ZeroDCEPP.save / DCENet.save are what train_upstream and joint write as final.pt: the same bytes
    # as the dict the trainers wrote by hand before, and load() reads them back
    from tasklle.io import save_checkpoint

    config = {"model": "zero-dce++", "scale_factor": 2, "lr": 1e-4}
    pp = ZeroDCEPP(scale_factor=2).init_weights()
    save_checkpoint(tmp_path / "hand.pt", {"format": "tasklle.zero_dce_pp/1", "kind": "ZeroDCEPP", "scale_factor": 2,
                                           "config": config, "model": pp.state_dict()})
    assert pp.save(tmp_path / "pp.pt", config=config) == tmp_path / "pp.pt"
    assert (tmp_path / "pp.pt").read_bytes() == (tmp_path / "hand.pt").read_bytes()
    back = ZeroDCEPP.load(tmp_path / "pp.pt")
    assert back.scale_factor == 2
    assert all(torch.equal(back.state_dict()[k], v) for k, v in pp.state_dict().items())
    net = DCENet().init_weights()
    save_checkpoint(tmp_path / "hand0.pt", {"format": "tasklle.zero_dce/1", "kind": "DCENet", "scale_factor": 1,
                                            "config": config, "model": net.state_dict()})
    net.save(tmp_path / "net.pt", scale_factor=1, config=config)
    assert (tmp_path / "net.pt").read_bytes() == (tmp_path / "hand0.pt").read_bytes()
    assert all(torch.equal(DCENet.load(tmp_path / "net.pt").state_dict()[k], v) for k, v in net.state_dict().items())
