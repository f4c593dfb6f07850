"""accelerate keeps one mixed-precision setting per process; each prefrl run gets the one it asks for."""

from accelerate.state import AcceleratorState

from prefrl.algorithms.reward import RewardConfig, train_reward


def test_runs_in_one_process_each_get_their_own_precision(tmp_path):
    seen = []
    for index, bf16 in enumerate((False, True, False)):
        train_reward(RewardConfig(model="tiny", data="arithmetic", output_dir=str(tmp_path / str(index)), max_steps=1, batch_size=2, num_train=4, num_eval=0, progress=False, bf16=bf16))
        seen.append(str(AcceleratorState().mixed_precision))
    assert seen == ["no", "bf16", "no"]
