import io

import pytest

import tasklle


def test_threads_roundtrip():
    import torch

    before = tasklle.get_num_threads()
    torch_before = torch.get_num_threads()
    try:
        tasklle.set_num_threads(1)
        assert tasklle.get_num_threads() == 1
        assert torch.get_num_threads() == 1
        tasklle.set_num_threads(0)
        assert tasklle.get_num_threads() >= 1
    finally:
        tasklle.set_num_threads(before, torch_too=False)
        torch.set_num_threads(torch_before)


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_set_num_threads_rejects(bad, exc):
    with pytest.raises(exc, match="n must"):
        tasklle.set_num_threads(bad)


def test_show_config_reports_build():
    buf = io.StringIO()
    info = tasklle.show_config(file=buf)
    text = buf.getvalue()
    assert "OpenMP" in text and "torch" in text
    assert isinstance(info["openmp"], bool)


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        tasklle.no_such_thing
