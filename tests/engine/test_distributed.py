"""Two processes (torchrun, gloo on CPU) with the same global batch give the same losses as one."""

import os
import subprocess
import sys

import pytest

from prefrl.engine.metrics import read_metrics
from tests.conftest import ROOT

ARGS = ["train", "reward", "model=tiny", "data=arithmetic", "max_steps=4", "batch_size=8", "num_train=64", "num_eval=0", "lr=1e-3", "progress=false"]


def run(command, output_dir):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    completed = subprocess.run([*command, *ARGS, f"output_dir={output_dir}"], env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [m["train/loss"] for m in read_metrics(output_dir) if "train/loss" in m]


@pytest.mark.multiprocess
def test_two_processes_match_one(tmp_path):
    single = run([sys.executable, "-m", "prefrl.cli"], tmp_path / "one")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", "-m", "prefrl.cli"]
    double = run(torchrun, tmp_path / "two")
    assert len(single) == len(double) == 4
    assert double == pytest.approx(single, rel=1e-4, abs=1e-5)
    # and the losses move, so equality is not trivially about a constant
    assert max(single) - min(single) > 1e-3
