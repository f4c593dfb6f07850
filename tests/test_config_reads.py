"""Every key a recipe accepts is one its code reads: each recipe runs one step on the tiny in-code
model with a spy that records which config attributes the run reads (validation and saving the
config excluded), and every accepted key must be among them, or in CONDITIONAL with the reason it
is read only under other settings. The config sections are what keep this true; this test is what
notices a section inherited by a recipe that does not read it."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from prefrl.algorithms import RECIPES
from prefrl.config import config_fields, load_config, save_config
from prefrl.errors import ConfigError

# Keys read only under settings other than the one-step runs below, and why.
CONDITIONAL: dict[str, str] = {
    "lora_alpha": "read only when lora_r > 0 (the runs below fine-tune fully)",
    "lora_dropout": "read only when lora_r > 0",
    "lora_target_modules": "read only when lora_r > 0",
    "r2m_alpha": "read only when r2m=true, which needs a trained Bradley–Terry reward model (tests/algorithms/test_r2m.py)",
    "r2m_omega_floor": "read only when r2m=true",
    "r2m_lr": "read only when r2m=true",
    "r2m_refresh_bf16": "read only when r2m=true",
    "r2m_ablation": "read only when r2m=true",
    "beta": "SPPO reads it only for the DPO-family losses (loss != sppo); DPO always reads it",
}

TINY = dict(model="tiny", data="arithmetic", progress=False, max_steps=1, batch_size=2, num_eval=2)
ONLINE = dict(TINY, max_new_tokens=4, kl_coef=0.1)  # kl_coef > 0: the reference and its estimator are read
GOLD = dict(reward="gold")  # a named source: its weight, timeout and retries are read (an empty reward= reads only `reward`)
RUNS: dict[str, dict] = {
    "reward": dict(TINY, num_train=4),
    "pairwise-rm": dict(TINY, num_train=4),
    "dwrl": dict(TINY, num_train=2, n_thoughts=2, max_thought_tokens=4, eval_n_thoughts=2),
    "dpo": dict(TINY, num_train=4, max_new_tokens=4),
    "sppo": dict(TINY, **GOLD, iterations=1, num_generations=2, max_new_tokens=4, prompts_per_iteration=2),
    "grpo": dict(ONLINE, **GOLD, num_generations=2),
    "rloo": dict(ONLINE, **GOLD, num_generations=2),
    "gpm-grpo": dict(ONLINE, num_generations=2, num_train=2),
    "ppo": dict(ONLINE, **GOLD, num_mini_batches=1),
    "pairwise-ppo": dict(ONLINE, **GOLD, num_mini_batches=1),
}


def _counts(frame) -> bool:
    """A read counts unless validation (any `validate` up the stack) or dataclasses (asdict, when
    the config is saved) made it."""
    if frame.f_code.co_filename.endswith("dataclasses.py"):
        return False
    while frame is not None:
        if frame.f_code.co_name == "validate":
            return False
        frame = frame.f_back
    return True


def spy_class(cls: type) -> tuple[type, set[str], list[bool]]:
    """A subclass of `cls` that records the names of the config keys read while `recording[0]`."""
    keys, reads, recording = set(config_fields(cls)), set(), [True]

    def __getattribute__(self, name):
        if recording[0] and name in keys and _counts(sys._getframe(1)):
            reads.add(name)
        return object.__getattribute__(self, name)

    return type(cls.__name__, (cls,), {"__getattribute__": __getattribute__}), reads, recording


def test_spy_ignores_validation_and_saving(tmp_path):
    spy, reads, recording = spy_class(RECIPES["grpo"][0])
    recording[0] = False
    config = spy(model="tiny", data="arithmetic")
    recording[0] = True
    config.validate()  # reads every key of every section
    save_config(config, tmp_path / "config.yaml")
    assert reads == set()
    assert config.num_generations == 8 and reads == {"num_generations"}


@pytest.mark.parametrize("recipe", list(RUNS))
def test_every_accepted_key_is_read(tmp_path, recipe):
    cls, train = RECIPES[recipe]
    spy, reads, recording = spy_class(cls)
    config = spy(output_dir=str(tmp_path / recipe), **RUNS[recipe])  # __post_init__'s reads count: they set up the data splits
    config.validate()
    train(config)
    unread = set(config_fields(cls)) - reads - set(CONDITIONAL)
    assert not unread, f"{recipe} accepts keys its run never reads: {sorted(unread)}"


def test_runs_cover_every_recipe():
    assert set(RUNS) == set(RECIPES)


def test_conditional_keys_exist():
    every = set().union(*(config_fields(cls) for cls, _ in RECIPES.values()))
    assert set(CONDITIONAL) <= every


# What the sections make true, as consequences rather than special cases.


def test_dpo_has_no_kl_coef_it_always_has_a_reference():
    with pytest.raises(ConfigError, match="unknown config key 'kl_coef' for recipe 'dpo'"):
        load_config(RECIPES["dpo"][0], None, ["kl_coef=0"], recipe="dpo")


@pytest.mark.parametrize("recipe", ["gpm-grpo", "ppo", "pairwise-ppo", "sppo", "dpo"])
@pytest.mark.parametrize("key", ["r2m", "r2m_alpha", "r2m_omega_floor", "r2m_lr", "r2m_refresh_bf16", "r2m_ablation"])
def test_r2m_keys_belong_to_the_reward_model_group_recipes_only(recipe, key):
    """R2M extends a learned reward inside the group loop (GRPO and RLOO, as the paper runs it);
    GRPO-pair's reward is its own verdict, and the other loops have no R2M."""
    with pytest.raises(ConfigError, match=f"unknown config key '{key}' for recipe '{recipe}'"):
        load_config(RECIPES[recipe][0], None, [f"{key}=1"], recipe=recipe)
    assert key in config_fields(RECIPES["grpo"][0]) and key in config_fields(RECIPES["rloo"][0])


def test_recipes_without_a_reference_reject_kl_keys():
    for recipe in ("sppo", "dpo", "reward", "pairwise-rm", "dwrl"):
        fields = config_fields(RECIPES[recipe][0])
        assert not {"kl_coef", "use_reference", "kl_estimator"} & set(fields), recipe


def test_help_lists_exactly_the_accepted_keys(capsys):
    from prefrl.cli import main

    for recipe, (cls, _) in RECIPES.items():
        assert main(["train", recipe, "--help"]) == 0
        out = capsys.readouterr().out
        listed = {line.split(" (default")[0].strip() for line in out.splitlines() if line.startswith("  ") and " (default " in line}
        assert listed == set(config_fields(cls)), recipe


@pytest.mark.parametrize(
    ("overrides", "loads"),
    [([], False), (["kl_coef=0.1"], True), (["use_reference=true"], True), (["use_reference=false"], False), (["use_reference=auto", "kl_coef=0.5"], True)],
)
def test_use_reference(overrides, loads):
    config = load_config(RECIPES["grpo"][0], None, ["model=tiny", *overrides], recipe="grpo")
    assert config.loads_reference() is loads


def test_use_reference_false_contradicts_a_kl_weight():
    with pytest.raises(ConfigError, match="use_reference=false contradicts"):
        load_config(RECIPES["ppo"][0], None, ["use_reference=false", "kl_coef=0.1"], recipe="ppo")
    with pytest.raises(ConfigError, match="'use_reference' must be auto, true or false"):
        load_config(RECIPES["ppo"][0], None, ["use_reference=maybe"], recipe="ppo")


def test_defaults_unchanged():
    """The defaults every recipe had under the one PolicyConfig chain (a sample of each section)."""
    expected = {
        "grpo": dict(lr=4e-5, max_steps=20, batch_size=8, num_generations=8, kl_coef=0.0, kl_estimator="k3", num_eval=64, scale_rewards="group", kl_in_reward=False, lr_scheduler="constant", warmup_ratio=0.0),
        "rloo": dict(kl_estimator="k1", kl_in_reward=True, output_dir="runs/rloo"),
        "ppo": dict(num_generations=1, batch_size=32, ppo_epochs=2, kl_estimator="k1", num_mini_batches=2, value_coef=0.1),
        "pairwise-ppo": dict(num_generations=1, batch_size=32, ppo_epochs=2, kl_estimator="k1", anchor_source="reference"),
        "dpo": dict(lr=1e-5, lr_scheduler="linear", warmup_ratio=0.1, batch_size=16, beta=0.1, max_length=512, num_eval=64, max_new_tokens=64),
        "sppo": dict(num_generations=5, temperature=0.7, top_p=0.9, max_steps=10, lr=1e-5),
        "reward": dict(lr=2e-5, max_length=512, num_eval=200, warmup_ratio=0.1, lr_scheduler="cosine", eval_batch_size=16),
        "pairwise-rm": dict(max_length=1024, lr=5e-5),  # 5e-5 since the position study (docs/benchmarks.md)
        "dwrl": dict(batch_size=4, eval_batch_size=8, num_eval=200, clip_eps=0.2),
        "gpm-grpo": dict(kl_coef=0.0, num_generations=8, scale_rewards="group"),
    }
    for recipe, values in expected.items():
        config = RECIPES[recipe][0]()
        assert {k: getattr(config, k) for k in values} == values, recipe


def test_sections_are_dataclasses_with_help():
    for cls, _ in RECIPES.values():
        assert all(field.metadata.get("help") for field in dataclasses.fields(cls)), cls.__name__
