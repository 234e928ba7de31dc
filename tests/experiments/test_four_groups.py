"""The four-group experiment end to end on a tiny built-in dataset (tiny
budget): every stage runs, results.json has the contract's keys, the figures
exist, a rerun resumes (skips every stage) and gives the same table."""
import json

import pytest

from tasklle.experiments import budget, four_groups, ratio_sweep
from tasklle.experiments import detect_eval, stages


@pytest.fixture
def tiny(tmp_path, tmp_path_factory, monkeypatch):
    # one cache per test session: the tiny dataset and its dark copy are made once
    monkeypatch.setenv("TASKLLE_CACHE", str(tmp_path_factory.getbasetemp() / "tasklle-cache"))
    monkeypatch.setenv("TASKLLE_PROGRESS", "0")
    b = budget("tiny")
    train = four_groups.train_settings(steps=2, batch_size=2, image_size=64, checkpoint_every=1,
                                       show_progress=False)
    opts = dict(n_train=b["n_train"], n_val=b["n_val"], darken_workers=1, figure_images=1, max_val=4,
                detect_kwargs=detect_eval.detect_kwargs(b["detect_scale"], b["score_thr"]), show_progress=False, verbose=False)
    return tmp_path, train, opts


VERDICTS = ("better (interval excludes 0)", "worse (interval excludes 0)", "not distinguishable")
GROUP_NAMES = {"low-light", "zero-dce++", "joint", "original"}


def _judges():
    # a stand-in judge: the shipped lite TinaFace at another score threshold (the real judge is set by the lead)
    from tasklle.models import load_shipped

    return {"lite-thr0.3": (load_shipped("tinaface-lite-demo"), {"score_thr": 0.3, "scale": 1.0})}


def _check_claims(saved, groups, pairs, judge="lite-thr0.3", resamples=1000):
    """intervals hold the point APs, differences are paired and worded by their interval, per detector."""
    assert saved["bootstrap"] == {"resamples": resamples, "seed": 0, "level": 0.95, "unit": "val images",
                                  "n_images": saved["config"]["val_images"]}
    frozen = saved["detector_name"]
    assert frozen == "tinaface-lite-demo" and list(saved["groups_by_detector"]) == [frozen, judge]
    assert saved["intervals_by_detector"][frozen] == saved["intervals"]
    assert saved["differences_by_detector"][frozen] == saved["differences"]
    for name, by_group in saved["groups_by_detector"].items():
        assert set(by_group) == set(groups)
        ivs = saved["intervals_by_detector"][name]
        assert set(ivs) == set(groups)
        for g in groups:
            for k in ("easy", "medium", "hard"):
                ap, (lo, hi) = by_group[g][k], ivs[g][k]
                if ap is None:  # a setting without counted faces: no AP, no interval
                    assert lo is None and hi is None
                else:
                    assert 0.0 <= lo <= ap + 1e-12 and ap - 1e-12 <= hi <= 1.0, (name, g, k, ap, lo, hi)
        diffs = saved["differences_by_detector"][name]
        assert list(diffs) == [f"{a} - {b}" for a, b in pairs]
        for label, d in diffs.items():
            a, b = label.split(" - ")
            for k in ("easy", "medium", "hard"):
                lo, hi = d[k]["ci"]
                assert d[k]["verdict"] in VERDICTS
                if by_group[a][k] is None or by_group[b][k] is None:
                    continue
                assert d[k]["delta"] == pytest.approx(by_group[a][k] - by_group[b][k], abs=1e-12)
                assert d[k]["verdict"] == ("better (interval excludes 0)" if lo > 0 else
                                           "worse (interval excludes 0)" if hi < 0 else "not distinguishable")
    assert saved["judges"][judge]["detect_kwargs"] == {"score_thr": 0.3, "scale": 1.0}
    assert saved["groups_by_detector"][judge] != saved["groups_by_detector"][frozen]  # another detector's view


def test_four_groups_tiny_end_to_end(tiny):
    tmp_path, train, opts = tiny
    out = tmp_path / "fg"
    res = four_groups.run(None, out, train=train, seeds=2, judges=_judges(), **opts)
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["groups"]) == {"low-light", "zero-dce++", "joint", "original"}
    for g, ap in saved["groups"].items():
        assert set(ap) == {"easy", "medium", "hard"}
        for v in ap.values():
            assert v is None or 0.0 <= v <= 1.0
    for key in ("config", "seeds", "timings", "detector", "joint_minus_zero_dce++"):
        assert key in saved
    for name in ("results.md", "pr_curves.png", "ap_bars.png", "detections.png"):
        assert (out / name).is_file(), name
    assert "| low-light |" in (out / "results.md").read_text()
    # image quality beside AP (quality_stage)
    assert set(saved["quality"]) == {"low-light", "zero-dce++", "joint"}
    for g, q in saved["quality"].items():
        assert set(q) == {"psnr", "ssim", "ciede2000", "exposure"}
        for m in q.values():
            assert len(m["per_image"]) == 4 and m["ci"][0] <= m["mean"] <= m["ci"][1]
    assert saved["original_exposure"]["target"] == 0.6
    assert saved["original_exposure"]["mean"] > saved["quality"]["low-light"]["exposure"]["mean"]
    assert (out / "ap_vs_psnr.png").is_file() and "| CIEDE2000 |" in (out / "results.md").read_text()
    # the claims: intervals, paired differences, the judge, the seed spread
    _check_claims(saved, GROUP_NAMES, four_groups.DIFFERENCES)
    assert list(saved["differences"]) == ["joint - zero-dce++", "zero-dce++ - low-light", "joint - low-light",
                                          "original - low-light"]
    assert saved["groups_by_detector"]["tinaface-lite-demo"] == saved["groups"]
    assert saved["seeds"]["train_seeds"] == [0, 1]
    assert set(saved["seeds_spread"]) == {"zero-dce++", "joint"}
    for g, sp in saved["seeds_spread"].items():
        for k, v in sp.items():
            assert len(v["per_seed"]) == 2 and v["per_seed"][0] == saved["groups"][g][k]
            assert v["min"] <= v["mean"] <= v["max"] and v["std"] >= 0
    for g in ("zero-dce++", "joint"):  # seed 0 keeps the one-seed folders; seed 1 beside it
        assert (out / "models" / g / "final.pt").is_file() and (out / "models" / g / "seed1" / "final.pt").is_file()
    md = (out / "results.md").read_text()
    assert "Scored by `lite-thr0.3`" in md and "Spread over the training seeds [0, 1]" in md
    assert "first training seed" in md and any(v in md for v in VERDICTS)
    lo, hi = saved["intervals"]["original"]["hard"]
    assert f"{saved['groups']['original']['hard']:.4f} [{lo:.3f}, {hi:.3f}]" in md
    assert "Only" not in md  # 1000 resamples: no quick-run note
    # the method's generation and optimiser by default, recorded
    d = saved["darkening"]
    assert d["darkener"] == "ec-zero-dce" and d["noise"] is None and d["keep_saturated"] is True
    assert d["exposure"] == [0.05, 0.3]
    assert "weight_decay=0" in saved["optimizer"] and "no gradient clipping" in saved["optimizer"]
    assert saved["config"]["train"]["recipe"] == "method"
    # the enhancers were trained with the same settings except W_down
    z = json.loads((out / "models" / "zero-dce++" / "log.json").read_text())["config"]
    j = json.loads((out / "models" / "joint" / "log.json").read_text())["config"]
    assert z["w_down"] == 0.0 and j["w_down"] == 0.5
    assert {k: v for k, v in z.items() if k not in ("w_down", "detector_sha256")} == \
        {k: v for k, v in j.items() if k not in ("w_down", "detector_sha256")}
    # rerun: every stage is found done, same table
    again = four_groups.run(None, out, train=train, seeds=2, judges=_judges(), **opts)
    assert again["groups"] == res["groups"]
    assert again["intervals"] == res["intervals"] and again["groups_by_detector"] == res["groups_by_detector"]
    assert again["seeds_spread"] == res["seeds_spread"]
    assert again["training"]["joint"]["key"] == res["training"]["joint"]["key"]

    # the diagnostics read the finished folder
    from tasklle.data import wider_format
    from tasklle.experiments import diagnose

    diag = diagnose.diagnose(out, verbose=False)
    assert json.loads((out / "diagnostics.json").read_text())["images"] == diag["images"] == 4
    e = diag["exposure"]
    assert e["low-light"]["mean"] < e["original"]["mean"]  # the dark copy is darker
    assert e["original"]["minus_original_mean"] == 0.0
    gt = wider_format.load_ground_truth(saved["config"]["gt_dir"])
    n_hard = sum(len(gt.keep_index("hard", i)) for i in range(gt.n_images))
    assert sum(b["faces"] for b in diag["ap_per_size"].values()) == n_hard
    for g in ("low-light", "zero-dce++", "joint", "original"):
        s = diag["score_on_gt_faces"][g]
        assert s["faces"] == n_hard and 0.0 <= s["found"] <= 1.0 and 0.0 <= s["mean_score"] <= 1.0
        for b in diag["ap_per_size"].values():
            assert b[g] is None or 0.0 <= b[g] <= 1.0
    assert "AP per face height" in (out / "diagnostics.md").read_text()
    assert diagnose.main([str(tmp_path / "nothing")]) == 1


def test_ratio_parsing():
    assert ratio_sweep.parse_ratio("2:1") == (1.0, 0.5)
    assert ratio_sweep.parse_ratio("1:3") == pytest.approx((1 / 3, 1.0))
    assert ratio_sweep.parse_ratio("0:1") == (0.0, 1.0)
    for bad in ("0:0", "2", "a:b", "-1:2"):
        with pytest.raises(ValueError):
            ratio_sweep.parse_ratio(bad)


def test_ratio_sweep_tiny(tiny):
    tmp_path, train, opts = tiny
    out = tmp_path / "rs"
    res = ratio_sweep.run(None, out, ratios=["1:0", "2:1"], train=train, resamples=200, seeds=2, judges=_judges(),
                          **opts)
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["ratios"]) == ["1:0", "2:1"]
    assert saved["ratios"]["2:1"]["w_down"] == 0.5
    assert set(saved["bounds"]) == {"low-light", "original"}
    for name in ("results.md", "ap_vs_ratio.png", "enhanced.png"):
        assert (out / name).is_file(), name
    assert res["best"]["hard"] in ("1:0", "2:1")
    assert set(saved["quality"]) == {"low-light", "1:0", "2:1"} and (out / "ap_vs_psnr.png").is_file()
    # intervals per ratio and bound; each ratio against 1:0 and against low-light
    _check_claims(saved, {"low-light", "1:0", "2:1", "original"},
                  [("2:1", "1:0"), ("1:0", "low-light"), ("2:1", "low-light")], resamples=200)
    assert set(saved["seeds_spread"]) == {"1:0", "2:1"}
    assert saved["seeds_spread"]["2:1"]["hard"]["per_seed"][0] == saved["ratios"]["2:1"]["hard"]
    md = (out / "results.md").read_text()
    assert "Only 200 resamples" in md and "Scored by `lite-thr0.3`" in md


def test_dark_copies_are_keyed_by_their_settings(tmp_path):
    """Another darkener, noise or exposure makes another dark copy: a stale one is never reused."""
    import torch

    from tasklle.io import write_image

    root = tmp_path / "wider"
    write_image(root / "WIDER_val/images/0--Parade/0--Parade_0.jpg", torch.rand(3, 24, 32) * 0.6 + 0.3)
    (root / "wider_face_split").mkdir(parents=True)
    (root / "wider_face_split/wider_face_val_bbx_gt.txt").write_text(
        "0--Parade/0--Parade_0.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n")
    clean = stages.ensure_dark(root, workers=1, verbose=False)
    again = stages.ensure_dark(root, workers=1, verbose=False)
    noisy = stages.ensure_dark(root, workers=1, verbose=False, darkening={"noise": "lednet"})
    brighter = stages.ensure_dark(root, workers=1, verbose=False, darkening={"exposure": (0.2, 0.3)})
    assert clean == again and len({clean, noisy, brighter}) == 3
    man = json.loads((noisy / "darken_manifest.json").read_text())
    assert man["settings"]["noise"] == "lednet"
    assert json.loads((clean / "darken_manifest.json").read_text())["settings"]["noise"] is None
    with pytest.raises(ValueError, match="ce_zerodce.pth"):
        stages.ensure_dark(root, workers=1, verbose=False, darkening={"darkener": "lednet"})
    with pytest.raises(ValueError, match="unknown keys"):
        stages.darkening_settings({"nois": "lednet"})


def test_readme_shows_the_packaged_reference_tables():
    from pathlib import Path

    from tasklle.experiments import reference_tables

    readme = Path(__file__).resolve().parents[2] / "README.md"
    if not readme.is_file():
        pytest.skip("README.md not beside the tests (installed package)")
    assert reference_tables() in readme.read_text()


def test_best_iou_score_helper():
    import numpy as np

    from tasklle.experiments.diagnose import _iou_xywh

    iou = _iou_xywh(np.array([0.0, 0, 10, 10]), np.array([[0.0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5]]))
    np.testing.assert_allclose(iou, [1.0, 50 / 150, 0.0])


def test_claims_arguments_and_helpers(tmp_path):
    from tasklle.experiments import claims
    from tasklle.models import load_shipped

    det = load_shipped("tinaface-lite-demo")
    assert claims.check_judges(None, "tinaface-lite-demo") == {}
    ok = claims.check_judges({"other": (det, None)}, "tinaface-lite-demo")
    assert ok["other"][0] is det and ok["other"][1] == {}
    for bad, exc in [([("x", (det, {}))], TypeError), ({"tinaface-lite-demo": (det, {})}, ValueError),
                     ({"x": det}, TypeError), ({"x": (det, 0.5)}, TypeError), ({"": (det, {})}, TypeError),
                     ({"a b": (det, {}), "a_b": (det, {})}, ValueError)]:
        with pytest.raises(exc, match="judges"):
            claims.check_judges(bad, "tinaface-lite-demo")
    with pytest.raises(ValueError, match="seeds"):
        four_groups.run(None, tmp_path / "x", seeds=0)
    with pytest.raises(TypeError, match="seeds"):
        claims.check_seeds(1.5)
    with pytest.raises(ValueError, match="resamples"):
        ratio_sweep.run(None, tmp_path / "y", resamples=0)
    assert claims.bootstrap_settings(500, 2, 0.9) == {"resamples": 500, "seed": 2, "level": 0.9, "unit": "val images"}
    assert claims.detector_name() == "tinaface-lite-demo"
    assert claims.detector_name(vedadet="w/tinaface_r50.pth") == "tinaface_r50"
    assert claims.detector_name("runs/det/final.pt") == "final" and claims.detector_name(det) == "TinaFace"
    sp = claims.seed_spread([{"easy": 0.1, "medium": 0.5, "hard": 0.2}, {"easy": 0.3, "medium": 0.5, "hard": 0.4}])
    assert sp["easy"]["per_seed"] == [0.1, 0.3] and sp["easy"]["mean"] == pytest.approx(0.2)
    assert sp["easy"]["std"] == pytest.approx(2 ** 0.5 / 10) and sp["medium"]["std"] == 0.0
    assert (sp["hard"]["min"], sp["hard"]["max"]) == (0.2, 0.4)
    assert claims.seed_spread([{"easy": 0.1, "medium": 0.5, "hard": 0.2}])["easy"]["std"] == 0.0
    assert claims.seed_folder(tmp_path, 0) == tmp_path and claims.seed_folder(tmp_path, 2) == tmp_path / "seed2"
    d = {s: {"delta": 0.01, "ci": [0.002, 0.03], "verdict": "better (interval excludes 0)"}
         for s in ("easy", "medium", "hard")}
    assert claims.verdict_line(d).startswith("easy better (interval excludes 0) (+0.0100 [+0.0020, +0.0300])")
    row = "| a - b | +0.0100 [+0.0020, +0.0300]: better (interval excludes 0) |"
    assert row in claims.differences_table({"a - b": d})
