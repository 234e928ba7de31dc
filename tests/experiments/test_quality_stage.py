"""The quality stage on a tiny hand-made WIDER-format pair of trees (originals and a dark copy):
per-image values equal the measures on the images as the detection reads them, intervals from
the shared resampling, the stage resumes, and the markdown table and AP-vs-PSNR figure appear."""
import numpy as np
import pytest
import torch

from tasklle.enhancement import enhance
from tasklle.eval import bootstrap, quality
from tasklle.experiments import quality_stage
from tasklle.io import read_image, write_image
from tasklle.models import ZeroDCEPP


def _trees(tmp_path, n=3):
    g = torch.Generator().manual_seed(0)
    entries = []
    for i in range(n):
        img = torch.rand(3, 24, 32, generator=g) * 0.7 + 0.2
        for root, scale in (("wider", 1.0), ("dark", 0.25)):
            write_image(tmp_path / root / "WIDER_val" / "images" / "0--Parade" / f"0_{i}.jpg", img * scale)
        entries.append((i, "0--Parade", f"0_{i}"))
    return tmp_path / "wider", tmp_path / "dark", entries


def test_experiment_quality_values_intervals_and_resume(tmp_path):
    root, dark, entries = _trees(tmp_path)
    torch.manual_seed(0)
    model = ZeroDCEPP().init_weights().eval()
    enhancers = {"low-light": None, "zero-dce++": model}
    q, orig = quality_stage.experiment_quality(tmp_path / "out", {"detector": "x"}, root, dark, entries, enhancers,
                                               show_progress=False)
    assert set(q) == {"low-light", "zero-dce++"}
    w = bootstrap.resample_weights(len(entries))
    for g, m in enhancers.items():
        for i, (_, e, n) in enumerate(entries):
            low = read_image(dark / "WIDER_val/images" / e / f"{n}.jpg")
            img = low if m is None else enhance(low, model=m)
            want = quality.image_quality(img, read_image(root / "WIDER_val/images" / e / f"{n}.jpg"))
            for k in quality.FULL_REFERENCE:
                assert q[g][k]["per_image"][i] == pytest.approx(want[k], rel=1e-9)
        for k in quality.FULL_REFERENCE:
            s = q[g][k]
            assert s["mean"] == pytest.approx(np.mean(s["per_image"]))
            assert tuple(s["ci"]) == bootstrap.mean_interval(s["per_image"], weights=w)
    assert orig["target"] == 0.6 and orig["mean"] > q["low-light"]["exposure"]["mean"]
    # resumable: a second call reads the stages back
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("stage.json")}
    assert len(stamps) == 2
    again, _ = quality_stage.experiment_quality(tmp_path / "out", {"detector": "x"}, root, dark, entries, enhancers,
                                                show_progress=False)
    assert again == q
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("stage.json")} == stamps


def test_add_quality_writes_the_figure_and_the_table(tmp_path):
    root, dark, entries = _trees(tmp_path, n=2)
    aps = {"low-light": {"easy": 0.5, "medium": 0.4, "hard": 0.3},
           "joint": {"easy": {"ap": 0.6, "ci": [0.5, 0.7]}, "medium": {"ap": 0.5}, "hard": {"ap": 0.4}}}
    torch.manual_seed(1)
    results = {"figures": {}}
    quality_stage.add_quality(results, tmp_path / "out", {}, root, dark, entries,
                              {"low-light": None, "joint": ZeroDCEPP().init_weights().eval()}, aps,
                              show_progress=False)
    assert (tmp_path / "out" / "ap_vs_psnr.png").is_file()
    assert results["figures"]["ap_vs_psnr"].endswith("ap_vs_psnr.png")
    lines = quality_stage.markdown_section(results, dict(aps, original={"easy": 0.9, "medium": 0.8, "hard": 0.7}))
    text = "\n".join(lines)
    assert "| group | AP easy | AP medium | AP hard | PSNR | SSIM | CIEDE2000 | exposure |" in text
    assert "| joint | 0.6000 | 0.5000 | 0.4000 |" in text and "| original | 0.9000 |" in text
    with pytest.raises(ValueError, match="nothing to draw"):
        quality_stage.ap_vs_psnr([], tmp_path / "x.png")


def test_fig_4_3_grid_shows_low_light_every_ratio_and_the_original(tmp_path, monkeypatch):
    from tasklle.experiments import figures, ratio_sweep

    root, dark, entries = _trees(tmp_path, n=2)
    seen = {}
    real = figures.image_grid

    def spy(rows, columns, path, **kw):
        seen["columns"], seen["rows"] = columns, rows
        return real(rows, columns, path, **kw)

    monkeypatch.setattr(figures, "image_grid", spy)
    torch.manual_seed(2)
    models = {"1:0": ZeroDCEPP().init_weights().eval(), "2:1": ZeroDCEPP().init_weights().eval()}
    ap = {"easy": 0.5, "medium": 0.4, "hard": 0.3}
    paths = ratio_sweep._figures(tmp_path / "out", {r: dict(ap) for r in models}, {r: None for r in models},
                                 {"low-light": ap, "original": ap}, models, entries, dark, 2, False, root=root)
    assert seen["columns"] == ["low-light", "1:0", "2:1", "original"]
    assert [r["name"] for r in seen["rows"]] == ["0--Parade/0_0", "0--Parade/0_1"]  # the same images in every column
    orig = read_image(root / "WIDER_val/images/0--Parade/0_0.jpg")
    assert torch.equal(seen["rows"][0]["images"]["original"], orig)
    assert paths["enhanced"].is_file()
