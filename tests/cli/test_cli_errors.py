"""CLI error handling: one line naming the path and the reason for every
OSError, --debug / TASKLLE_DEBUG for the traceback, --threads range, and
messages that suggest only options that exist."""
import os

import pytest
import torch

from tasklle.cli import main
from tasklle.io import write_image


@pytest.fixture
def image(tmp_path):
    p = tmp_path / "in.png"
    write_image(p, torch.rand(3, 24, 32))
    return p


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_output_under_a_file_is_one_line(tmp_path, image, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert main(["darken", str(image), str(blocker / "out.png"), "--noise", "none"]) == 1
    line = _one_error_line(capsys)
    assert line.startswith("tasklle darken: error: ") and str(blocker) in line


def test_dataset_output_that_is_a_file(tmp_path, image, capsys):
    src = tmp_path / "src"
    write_image(src / "a.png", torch.rand(3, 8, 8))
    blocker = tmp_path / "dst"
    blocker.write_text("x")
    assert main(["darken", str(src), str(blocker), "--workers", "1"]) == 1
    line = _one_error_line(capsys)
    assert str(blocker) in line


def test_debug_shows_the_traceback(tmp_path, image, monkeypatch):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    (tmp_path / "src").mkdir()
    argv = ["darken", str(tmp_path / "src"), str(blocker / "sub"), "--workers", "1"]
    with pytest.raises(OSError):
        main(["--debug"] + argv)
    monkeypatch.setenv("TASKLLE_DEBUG", "1")
    with pytest.raises(OSError):
        main(argv)


@pytest.mark.parametrize("value", ["-1", "100000"])
def test_threads_out_of_range(value, image, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--threads", value, "darken", str(image), str(tmp_path / "o.png")])
    assert info.value.code == 2
    assert "--threads must be between 0" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--quality", "0"], ["--quality", "101"], ["--seed", "-1"]])
def test_single_image_validates_like_folder_mode(flag, image, tmp_path, capsys):
    assert main(["darken", str(image), str(tmp_path / "o.png")] + flag) == 1
    line = _one_error_line(capsys)
    assert ("quality" in line) if flag[0] == "--quality" else ("seed" in line)
    assert not (tmp_path / "o.png").exists()


class _Evil:
    """Pickles as a call of os.getcwd: harmless, but a global weights_only refuses."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_untrusted_weights_never_suggest_weights_only_false(tmp_path, image, capsys):
    bad = tmp_path / "bad.pt"
    torch.save({"config": _Evil()}, bad)
    assert main(["darken", str(image), str(tmp_path / "o.png"), "--weights", str(bad)]) == 1
    line = _one_error_line(capsys)
    assert "bad.pt" in line and "not a plain weights file" in line
    assert "weights_only" not in line and "trust the source" not in line


def test_interrupt_hint_names_only_existing_options(monkeypatch, capsys, image, tmp_path):
    import tasklle.commands.darken as darken_cmd

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(darken_cmd, "run", interrupted)
    assert main(["darken", str(image), str(tmp_path / "o.png")]) == 130
    err = capsys.readouterr().err
    assert "--resume" not in err and "run the same command again" in err
