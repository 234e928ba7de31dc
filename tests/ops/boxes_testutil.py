"""Helpers shared by the box-kernel tests (test_boxes, test_nms, test_assign)."""
import contextlib

import pytest

import torch

import tasklle


def rand_boxes(n, dtype=torch.float32, size=100.0, grid=None, gen=None):
    """(n, 4) random boxes x1 y1 x2 y2 inside [0, size]^2 (plus up to size/3).

    grid: snap coordinates to multiples of `grid` pixels, which makes exact IoU
    ties, shared edges and duplicate boxes common."""
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * size
    wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * size / 3
    b = torch.cat([xy, xy + wh], 1)
    if grid:
        b = (b / grid).round() * grid
    return b.to(dtype)


@contextlib.contextmanager
def threads(n):
    """Run the C core with n threads, then restore both thread settings."""
    before, torch_before = tasklle.get_num_threads(), torch.get_num_threads()
    try:
        tasklle.set_num_threads(n, torch_too=False)
        yield
    finally:
        tasklle.set_num_threads(before, torch_too=False)
        torch.set_num_threads(torch_before)


@pytest.fixture(autouse=True, scope="module")
def torch_one_thread():
    """torch's intra-op pool on 1 thread while these tests run: the twins make many
    tiny reductions, and on a busy 2-core machine each one that torch runs in
    parallel waits for a scheduler slot (tens of ms). Results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
