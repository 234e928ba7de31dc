"""The defaults the README states are the code's: the run-size table of
"Darkening and training" (budgets, a run on a --root, the Python experiments,
the trainers and their commands) and the few defaults stated in prose.

Each README value is read with a regex and compared with the value the code
path a user takes produces (the CLI parser and ``commands.experiment.resolve``
for the budgets, the functions' own signatures for the trainers), so changing
either side alone fails here."""
import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["run", "length", "crop", "batch", "lr", "val images", "TinaFace score threshold"]


def readme():
    return (REPO / "README.md").read_text(encoding="utf-8")


def run_table():
    """{run label: {column: cell}} of the run-size table (the one whose header is COLUMNS)."""
    lines = readme().splitlines()
    header = "| " + " | ".join(COLUMNS) + " |"
    starts = [i for i, line in enumerate(lines) if line.strip() == header]
    assert len(starts) == 1, f"the README must hold exactly one table headed {header!r}"
    rows = {}
    for line in lines[starts[0] + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == len(COLUMNS), line
        rows[cells[0]] = dict(zip(COLUMNS, cells))
    return rows


def row(prefix):
    """The row whose label starts with ``prefix`` (exactly one)."""
    found = [r for label, r in run_table().items() if label.startswith(prefix)]
    assert len(found) == 1, f"the README's run table needs one row starting {prefix!r}, found {len(found)}"
    return found[0]


def length(cell):
    """'1,000 steps' -> ('steps', 1000); '10 epochs' -> ('epochs', 10)."""
    m = re.fullmatch(r"([\d,]+) (step|epoch)s?", cell)
    assert m, f"run length {cell!r} must read 'N steps' or 'N epochs'"
    return m.group(2) + "s", int(m.group(1).replace(",", ""))


def number(cell):
    assert re.fullmatch(r"[\d.e+-]+", cell), f"{cell!r} is not a number"
    return float(cell)


def val_images(cell):
    """'6' -> 6; 'all 120' -> ('all', 120); 'all' -> ('all', None)."""
    m = re.fullmatch(r"(all)?\s*(\d+)?", cell)
    assert m and (m.group(1) or m.group(2)), f"val images {cell!r} must read 'N', 'all N' or 'all'"
    if m.group(1):
        return "all", None if m.group(2) is None else int(m.group(2))
    return int(m.group(2))


def cli(*argv):
    from tasklle.cli import build_parser

    return build_parser().parse_args(list(argv))


def builtin_size():
    from tasklle.commands._args import signature_defaults

    d = signature_defaults("tasklle.data.demo", "build")
    return d["n_train"], d["n_val"]


def detector_score_thr():
    from tasklle.models.tinaface.postprocess import SCORE_THR

    return SCORE_THR


def check_training(r, kind, n, image_size, batch_size, lr):
    assert length(r["length"]) == (kind, n), r
    assert number(r["crop"]) == image_size, r
    assert number(r["batch"]) == batch_size, r
    assert number(r["lr"]) == lr, r


@pytest.mark.parametrize("name", ["tiny", "small", "default", "long"])
def test_budget_rows_are_what_the_demo_runs(name):
    from tasklle.commands.experiment import resolve

    r = row(f"`--budget {name}`")
    train, opts, got = resolve(cli("demo", "--budget", name), builtin=True)
    assert got == name
    # the budget's detection settings are the lite TinaFace's (the RetinaFace keeps biubug6's)
    tina = resolve(cli("demo", "--budget", name, "--detector", "tinaface-lite-demo"), builtin=True)[1]
    check_training(r, "steps", train["steps"], train["image_size"], train["batch_size"], train["lr"])
    n_train, n_val = builtin_size()
    n_val = opts["n_val"] or n_val
    if opts["max_val"] is None:
        assert val_images(r["val images"]) == ("all", n_val), r
    else:
        assert val_images(r["val images"]) == min(opts["max_val"], n_val), r
    assert number(r["TinaFace score threshold"]) == tina["detect_kwargs"]["score_thr"], r
    assert "score_thr" not in opts["detect_kwargs"]  # the default frozen RetinaFace: its own 0.02
    if opts["n_train"] is not None:  # a budget with its own built-in set says so in its label
        label = [k for k in run_table() if k.startswith(f"`--budget {name}`")][0]
        m = re.search(r"(\d+) train / (\d+) val images", label)
        assert m and (int(m.group(1)), int(m.group(2))) == (opts["n_train"], opts["n_val"]), r


def test_the_demo_runs_the_default_budget():
    from tasklle.commands.experiment import resolve

    label = [k for k in run_table() if k.startswith("`--budget default`")][0]
    assert "`tasklle demo`" in label
    assert resolve(cli("demo"), builtin=True)[2] == "default"


def test_root_row_is_what_an_experiment_on_a_root_runs(monkeypatch):
    import tasklle.commands.experiment as experiment

    r = row("`tasklle experiment ... --root DIR`")
    # the run length on a root is epochs over its train split: record the epochs instead of counting images
    monkeypatch.setattr(experiment, "epoch_steps", lambda root, epochs, batch_size: 1000 + epochs)
    train, opts, name = experiment.resolve(cli("experiment", "four-groups", "--root", "R"), builtin=False)
    assert name is None
    check_training(r, "epochs", train["steps"] - 1000, train["image_size"], train["batch_size"], train["lr"])
    assert experiment.DEFAULT_EPOCHS == length(r["length"])[1]
    assert opts["max_val"] is None and val_images(r["val images"]) == ("all", None), r
    assert "score_thr" not in opts["detect_kwargs"]  # the detector's own
    assert number(r["TinaFace score threshold"]) == detector_score_thr(), r


def test_python_experiment_row_is_train_settings():
    from tasklle.experiments import four_groups, ratio_sweep
    from tasklle.experiments.four_groups import train_settings

    r = row("`four_groups.run` / `ratio_sweep.run`")
    t = train_settings()
    check_training(r, "steps", t["steps"], t["image_size"], t["batch_size"], t["lr"])
    for run in (four_groups.run, ratio_sweep.run):
        p = inspect.signature(run).parameters
        assert p["train"].default is None and p["max_val"].default is None and p["detect_kwargs"].default is None
    assert val_images(r["val images"]) == ("all", None), r
    assert number(r["TinaFace score threshold"]) == detector_score_thr(), r


def test_joint_row_is_the_function_and_its_command():
    from tasklle.train import joint
    from tasklle.train.joint import DEFAULT_STEPS

    r = row("`tasklle.train.joint`, `tasklle train-joint`")
    p = inspect.signature(joint).parameters
    assert p["steps"].default is None and p["epochs"].default is None  # then DEFAULT_STEPS
    check_training(r, "steps", DEFAULT_STEPS, p["image_size"].default, p["batch_size"].default, p["lr"].default)
    a = cli("train-joint", "--data", "D")
    check_training(r, "steps", a.steps, a.image_size, a.batch_size, a.lr)


def test_upstream_rows_are_the_function_and_its_command():
    from tasklle.train.upstream import DEFAULT_EPOCHS, train_upstream

    r = row("`tasklle.train.train_upstream`")
    p = inspect.signature(train_upstream).parameters
    assert p["steps"].default is None and p["epochs"].default is None  # then DEFAULT_EPOCHS
    check_training(r, "epochs", DEFAULT_EPOCHS, p["image_size"].default, p["batch_size"].default, p["lr"].default)
    r = row("`tasklle train-upstream`")
    a = cli("train-upstream", "--data", "D")
    check_training(r, "epochs", a.epochs, a.image_size, a.batch_size, a.lr)


def test_defaults_stated_in_prose():
    from tasklle.commands.experiment import DEFAULT_EPOCHS

    text = readme()
    n_train, n_val = builtin_size()
    m = re.search(r"the default is (\d+) train / (\d+) val images", text)
    assert m and (int(m.group(1)), int(m.group(2))) == (n_train, n_val)
    m = re.search(r"under\s+`([\w-]+)/` by\s+default; `--out DIR` to change", text)
    assert m and cli("demo").out == m.group(1)
    m = re.search(r"`--resamples N`, default ([\d,]+)", text)
    a = cli("experiment", "four-groups")
    assert m and int(m.group(1).replace(",", "")) == a.resamples
    m = re.search(r"`--epochs` passes over\s+WIDER_train \(default (\d+), about ([\d,]+) steps at batch (\d+)", text)
    assert m and int(m.group(1)) == DEFAULT_EPOCHS and int(m.group(3)) == 4
    # 12,880 WIDER_train images (the release) in batches of 4, for DEFAULT_EPOCHS passes
    assert round(int(m.group(2).replace(",", "")), -3) == round(DEFAULT_EPOCHS * 12880 / 4, -3)
    m = re.search(r"`--recipe zero-dce\+\+` uses the official Zero-DCE\+\+ script's weight\s+decay (\S+) and "
                  r"gradient-norm clip (\S+) instead", text)
    from tasklle.train.recipes import RECIPES

    assert m and (float(m.group(1)), float(m.group(2))) == (RECIPES["zero-dce++"]["weight_decay"],
                                                            RECIPES["zero-dce++"]["grad_clip"])
    assert RECIPES["method"] == {"weight_decay": 0.0, "grad_clip": None}


def test_darkening_and_exposure_defaults():
    from tasklle.dataset_darkening import darken_dataset
    from tasklle.losses.exposure_control import exposure_control
    from tasklle.models.ec_zero_dce import SATURATION_THRESHOLD

    text = readme()
    m = re.search(r"Darkening: E drawn from\s+U\(([\d.]+), ([\d.]+)\) per image, pixels whose Lab lightness L/100 "
                  r"exceeds ([\d.]+) kept\s+bright, no sensor noise", text)
    assert m, "the README's darkening defaults sentence moved"
    p = inspect.signature(darken_dataset).parameters
    assert p["exposure"].default == (float(m.group(1)), float(m.group(2)))
    assert p["keep_saturated"].default is True and float(m.group(3)) == SATURATION_THRESHOLD
    assert p["noise"].default is None
    a = cli("experiment", "four-groups")
    assert (a.darkener, a.noise) == ("ec-zero-dce", "none")
    # L_exp's target exposure, stated as "L_exp's E = 0.6" and "target E = 0.6"
    targets = {float(e) for e in re.findall(r"L_exp's (?:target )?E = (\d+(?:\.\d+)?)", text)}
    assert targets == {inspect.signature(exposure_control).parameters["exposure"].default}
