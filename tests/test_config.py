import dataclasses

import pytest

from prefrl.algorithms import RECIPES
from prefrl.algorithms.dpo import DPOConfig
from prefrl.algorithms.grpo import GRPOConfig
from prefrl.algorithms.reward import RewardConfig
from prefrl.algorithms.sppo import SPPOConfig
from prefrl.config import TRL_ALIASES, TrainConfig, config_fields, load_config, option, parse_overrides, resolve_key
from prefrl.errors import ConfigError


def test_overrides_are_coerced_to_field_types(tmp_path):
    config = load_config(RewardConfig, None, ["lr=3e-5", "max_steps=7", "bf16=true", "model=tiny", "center_rewards_coefficient=0.01"])
    assert config.lr == pytest.approx(3e-5) and isinstance(config.lr, float)
    assert config.max_steps == 7 and config.bf16 is True and config.model == "tiny"


def test_yaml_then_overrides_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_steps: 5\nlr: 1.0e-4\nseed: 3\n")
    config = load_config(RewardConfig, str(path), ["seed=9"])
    assert (config.max_steps, config.lr, config.seed) == (5, 1e-4, 9)


def test_unknown_key_names_it_and_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(RewardConfig, None, ["learnig_rate=1e-5"])
    message = str(error.value)
    assert "'learnig_rate'" in message and "Valid keys:" in message and "lr" in message and "Did you mean 'learning_rate'" in message
    path = tmp_path / "c.yaml"
    path.write_text("max_step: 5\n")
    with pytest.raises(ConfigError, match=r"'max_step'.*c.yaml.*Did you mean 'max_steps'"):
        load_config(RewardConfig, str(path))


@pytest.mark.parametrize(
    "override, fragment",
    [("max_steps=abc", "max_steps"), ("bf16=maybe", "bf16"), ("lr=-1", "'lr'"), ("lr_scheduler=step", "lr_scheduler"), ("noequals", "key=value")],
)
def test_bad_values_fail_with_the_key(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(RewardConfig, None, [override])


def test_every_field_has_help():
    for cls in (TrainConfig, RewardConfig):
        for field in dataclasses.fields(cls):
            assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"


def test_common_keys_present():
    names = {f.name for f in dataclasses.fields(RewardConfig)}
    assert {"model", "data", "output_dir", "seed", "max_steps", "batch_size", "lr"} <= names


def test_parse_overrides_accepts_dashes():
    assert parse_overrides(["--max-steps=3"]) == {"max_steps": "3"}


def test_option_copies_mutable_defaults():
    @dataclasses.dataclass
    class Example:
        items: list = option([1], "a list")

    first, second = Example(), Example()
    first.items.append(2)
    assert second.items == [1]


# ---- TRL's names ---------------------------------------------------------------------------------
def test_trl_names_are_aliases_of_prefrl_keys(tmp_path):
    config = load_config(
        GRPOConfig,
        None,
        [
            "learning_rate=3e-5", "max_completion_length=17", "epsilon=0.3", "epsilon_high=0.4", "num_iterations=3",
            "model_name_or_path=tiny", "dataset_name=constraints", "lr_scheduler_type=linear", "resume_from_checkpoint=true", "beta=0.05",
        ],
    )
    assert (config.lr, config.max_new_tokens, config.clip_eps, config.clip_eps_high, config.ppo_epochs) == (3e-5, 17, 0.3, 0.4, 3)
    assert (config.model, config.data, config.lr_scheduler, config.resume, config.kl_coef) == ("tiny", "constraints", "linear", True, 0.05)
    path = tmp_path / "trl.yaml"
    path.write_text("learning_rate: 2.0e-5\nbeta: 0.02\n")  # a YAML file in TRL's names
    config = load_config(GRPOConfig, str(path))
    assert config.lr == 2e-5 and config.kl_coef == 0.02


def test_beta_is_kl_coef_in_rl_but_its_own_key_in_dpo_and_sppo():
    dpo = load_config(DPOConfig, None, ["beta=0.3"])
    assert dpo.beta == 0.3 and not hasattr(dpo, "kl_coef")  # DPO always has a reference; β is its only KL weight
    sppo = load_config(SPPOConfig, None, ["beta=0.01"])
    assert sppo.beta == 0.01 and not hasattr(sppo, "kl_coef")
    assert load_config(GRPOConfig, None, ["beta=0.1"]).kl_coef == 0.1


def test_alias_applies_only_where_the_recipe_has_the_target_key():
    # the reward recipe samples nothing: max_completion_length (max_new_tokens) and beta (kl_coef) are not its keys
    for key in ("max_completion_length", "beta", "epsilon"):
        with pytest.raises(ConfigError, match=rf"'{key}'.*TRL's name for"):
            load_config(RewardConfig, None, [f"{key}=1"])
    for name, (cls, _) in RECIPES.items():
        fields = config_fields(cls)
        for trl, key in TRL_ALIASES.items():
            expected = trl if trl in fields else (key if key in fields else None)
            assert resolve_key(trl, cls) == expected, (name, trl)


def test_per_device_train_batch_size_is_not_batch_size():
    with pytest.raises(ConfigError, match="global batch"):
        load_config(RewardConfig, None, ["per_device_train_batch_size=8"])


def test_aliases_in_readme_match_the_code():
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## TRL names", 1)[1].split("\n## ", 1)[0]
    for trl, key in TRL_ALIASES.items():
        assert f"`{trl}`" in section and f"`{key}`" in section, trl
    assert "per_device_train_batch_size" in section


# ---- new keys and their checks --------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["resume=true", "overwrite=true"], "contradict"),
        (["eval_fraction=1"], "eval_fraction"),
        (["eval_fraction=-0.1"], "eval_fraction"),
        (["eval_split=train"], "evaluation would score training rows"),
        (["lr=inf"], "'lr'"),
        (["max_steps=1e400"], "max_steps"),
    ],
)
def test_new_checks(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(RewardConfig, None, overrides)


def test_yaml_oddities_are_config_errors(tmp_path):
    path = tmp_path / "c.yaml"
    for text, fragment in [("1: 2\n", "unknown config key '1'"), ("lr: [1, 2]\n", "'lr'"), ("model: {a: 1}\n", "'model'"), ("- lr\n", "mapping")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=fragment):
            load_config(RewardConfig, str(path))
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(RewardConfig, str(tmp_path))
    path.write_bytes(b"lr: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(RewardConfig, str(path))
