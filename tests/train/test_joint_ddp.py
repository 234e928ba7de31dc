"""Joint training under torchrun (gloo on CPU): two processes with batch 1
make the same updates as one process with batch 2 (slow: spawns processes)."""
import subprocess
import sys

import pytest
from conftest import package_env
import torch



@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_combined_batch(tmp_path):
    from tasklle.data import demo
    from tasklle.models import TinaFace
    from tasklle.train.joint import load_upstream

    root = demo.build(tmp_path / "data", n_train=4, n_val=0)
    torch.manual_seed(0)
    TinaFace.lite().save(tmp_path / "det.pt")
    env = package_env(TASKLLE_PROGRESS="0", OMP_NUM_THREADS="1")
    common = ["train-joint", "--data", str(root), "--detector", str(tmp_path / "det.pt"), "--steps", "2",
              "--crop", "resize", "--image-size", "64", "--normalise", "running-ratio", "--no-progress"]
    one = subprocess.run([sys.executable, "-m", "tasklle", "--threads", "1", *common, "--batch-size", "2",
                          "--out", str(tmp_path / "one")], env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29531", "-m", "tasklle", "--threads", "1", *common, "--batch-size", "1",
                          "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    a = load_upstream(tmp_path / "one" / "final.pt").state_dict()
    b = load_upstream(tmp_path / "two" / "final.pt").state_dict()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-6)
