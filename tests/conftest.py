"""Shared fixtures: the reference data in ../shared (tests using it skip when
it is absent), deterministic seeds, and the `slow` marker."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TASKLLE_SHARED", REPO.parent / "shared"))
WIDER_GT = SHARED / "data" / "wider_face_gt"
ZERO_DCE_PP_WEIGHTS = SHARED / "data" / "zero_dce_pp" / "Epoch99.pth"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TASKLLE_SLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="slow variant: set TASKLLE_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def package_env(**extra):
    """os.environ for a child Python process that must import the same tasklle
    as this one: the folder holding the imported package goes first on
    PYTHONPATH (``python/`` in a developer checkout with the built extension,
    site-packages when tasklle is installed, as in CI, where ``python/`` has no
    ``_C``). ``extra`` entries are added (strings)."""
    import tasklle

    here = str(Path(tasklle.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, PYTHONPATH=path, **extra)


@pytest.fixture
def wider_gt_dir():
    if not (WIDER_GT / "wider_face_val.mat").is_file():
        pytest.skip("../shared/data/wider_face_gt is absent")
    return WIDER_GT


@pytest.fixture
def zero_dce_pp_weights():
    if not ZERO_DCE_PP_WEIGHTS.is_file():
        pytest.skip("../shared/data/zero_dce_pp/Epoch99.pth is absent")
    return ZERO_DCE_PP_WEIGHTS


@pytest.fixture
def one_thread():
    """One thread for the C core and torch, restored afterwards. Small tensors
    gain nothing from a second thread, and on a busy machine OpenMP
    spin-waiting makes them many times slower."""
    import torch

    import tasklle

    before, torch_before = tasklle.get_num_threads(), torch.get_num_threads()
    tasklle.set_num_threads(1)
    yield
    tasklle.set_num_threads(before, torch_too=False)
    torch.set_num_threads(torch_before)


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
    yield
