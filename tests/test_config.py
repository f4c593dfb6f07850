import dataclasses

import pytest

from prefrl.algorithms.reward import RewardConfig
from prefrl.config import TrainConfig, load_config, option, parse_overrides
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
        load_config(RewardConfig, None, ["learning_rate=1e-5"])
    message = str(error.value)
    assert "'learning_rate'" in message and "Valid keys:" in message and "lr" in message
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
