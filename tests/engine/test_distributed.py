"""Two processes (torchrun, gloo on CPU) with the same global batch give the same losses as one.

The reward recipe through the CLI as it is; every policy and judge recipe (GRPO with
scale_rewards=batch and token-mean, RLOO, DPO, SPPO, DWRL) through this file run as a worker
(`python -m tests.engine.test_distributed ROOT RECIPE…`), which makes sampling a function of the
prompt alone (tests/engine/test_accumulation.py): each process samples with its own generator, so
without that the two runs would train on different — equally valid — samples.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from prefrl.engine.metrics import read_metrics
from tests.conftest import ROOT

ARGS = ["train", "reward", "model=tiny", "data=arithmetic", "max_steps=4", "batch_size=8", "num_train=64", "num_eval=0", "lr=1e-3", "progress=false"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
EQUIVALENT_RECIPES = ["grpo", "rloo", "dpo", "sppo", "dwrl"]


def environment():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]), OMP_NUM_THREADS="1")


def run(command, output_dir):
    completed = subprocess.run([*command, *ARGS, f"output_dir={output_dir}"], env=environment(), capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return [m["train/loss"] for m in read_metrics(output_dir) if "train/loss" in m]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_match_one(tmp_path):
    single = run([sys.executable, "-m", "prefrl.cli"], tmp_path / "one")
    double = run([*TORCHRUN, "--master_port", "29517", "-m", "prefrl.cli"], tmp_path / "two")
    assert len(single) == len(double) == 4
    assert double == pytest.approx(single, rel=1e-4, abs=1e-5)
    # and the losses move, so equality is not trivially about a constant
    assert max(single) - min(single) > 1e-3


@pytest.mark.slow
@pytest.mark.multiprocess
def test_every_recipe_takes_the_same_steps_on_two_processes(tmp_path):
    from tests.engine.test_accumulation import assert_same_training

    worker = ["-m", "tests.engine.test_distributed"]
    for command, root in (([sys.executable, *worker], tmp_path / "one"), ([*TORCHRUN, "--master_port", "29519", *worker], tmp_path / "two")):
        completed = subprocess.run([*command, str(root), *EQUIVALENT_RECIPES], env=environment(), cwd=ROOT, capture_output=True, text=True, timeout=900)
        assert completed.returncode == 0, completed.stderr[-3000:]
    for recipe in EQUIVALENT_RECIPES:
        assert_same_training(tmp_path / "one" / recipe, tmp_path / "two" / recipe)


if __name__ == "__main__":  # the worker: each recipe into ROOT/RECIPE, sampling made prompt-determined
    from tests.engine.test_accumulation import deterministic_patches, run_recipe

    for target, name, value in deterministic_patches():
        setattr(target, name, value)
    for recipe in sys.argv[2:]:
        run_recipe(recipe, Path(sys.argv[1]) / recipe)
