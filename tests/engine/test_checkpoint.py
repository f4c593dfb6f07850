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


# ---- gradient checkpointing (activation recomputation, not the checkpoints above) -----------------
def test_gradient_checkpointing_gives_the_same_gradients(tmp_path):
    import torch

    from prefrl.config import TrainConfig
    from prefrl.engine.engine import Engine
    from prefrl.models.tiny import build_tiny_model

    torch.manual_seed(0)
    ids = torch.randint(0, 64, (2, 12))

    def gradients(checkpointing: bool):
        model = build_tiny_model(vocab_size=64, seed=0)
        engine = Engine(TrainConfig(model="tiny", output_dir=str(tmp_path / str(checkpointing)), gradient_checkpointing=checkpointing, progress=False), recipe="test")
        prepared = engine.prepare(model)
        layer = engine.unwrap(prepared).model.layers[0]
        calls = []
        layer.input_layernorm.register_forward_pre_hook(lambda *args: calls.append(1))  # inside the checkpointed forward
        prepared.train()
        loss = prepared(input_ids=ids, labels=ids).loss
        loss.backward()
        engine.finish()
        return {n: p.grad.clone() for n, p in prepared.named_parameters()}, len(calls), getattr(layer, "gradient_checkpointing", False)

    plain, plain_calls, plain_on = gradients(False)
    recomputed, recomputed_calls, recomputed_on = gradients(True)
    assert (plain_on, recomputed_on) == (False, True)
    assert (plain_calls, recomputed_calls) == (1, 2)  # the layer ran again in the backward pass
    assert plain.keys() == recomputed.keys()
    for name in plain:
        torch.testing.assert_close(recomputed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)
