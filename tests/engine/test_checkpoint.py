from prefrl.engine import checkpoint as ckpt


def test_only_complete_checkpoints_count_and_prune_keeps_newest(tmp_path):
    for step in (2, 4, 6):
        staging = ckpt.staging_path(tmp_path, step)
        staging.mkdir(parents=True)
        ckpt.write_trainer_state(staging, {"step": step})
        ckpt.publish(staging, step)
    # an interrupted write: a staging dir, and a step dir without its state file
    ckpt.staging_path(tmp_path, 8).mkdir()
    (ckpt.checkpoint_root(tmp_path) / ckpt.step_name(10)).mkdir()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [2, 4, 6]
    assert ckpt.latest_checkpoint(tmp_path).name == "step-00000006"
    ckpt.prune(tmp_path, keep=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [4, 6]
    assert not ckpt.staging_path(tmp_path, 8).exists()
