"""Recipe configs: one dataclass per recipe, loaded from YAML with `key=value` overrides.

A recipe's config composes the sections (`ConfigSection`) its code reads, so it accepts exactly
those keys. Every field carries its help text in `metadata["help"]` so `prefrl train <recipe> --help` can list
them. Unknown keys fail with the list of valid ones; values are coerced to the field's type.
TRL's names for the same settings are accepted as aliases (`TRL_ALIASES`), in YAML files and on
the command line, where the recipe has the key they stand for.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from prefrl.errors import ConfigError

C = TypeVar("C")


def option(default: Any, help: str, **kwargs: Any) -> Any:  # noqa: A002 - mirrors argparse
    """A config field with its help text. Mutable defaults go through `default_factory`."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


class ConfigSection:
    """A group of config keys that one concern reads. A recipe's config inherits exactly the sections
    its code reads, so its `--help` lists and its loader accepts only those keys. Every section
    validates its own keys in `validate`, calling `super().validate()` so that all of a recipe's
    sections run (cooperative multiple inheritance)."""

    def validate(self) -> None:
        """Checks that need no model or data; the engine checks what depends on the world size."""


def _at_least(config: Any, minimum: int, *keys: str) -> None:
    for key in keys:
        if getattr(config, key) < minimum:
            bound = "at least 1" if minimum == 1 else "0 or more"
            raise ConfigError(f"config key {key!r} must be {bound}, got {getattr(config, key)}")


def _one_of(config: Any, key: str, allowed: tuple[str, ...]) -> None:
    if getattr(config, key) not in allowed:
        raise ConfigError(f"config key {key!r} must be one of {', '.join(allowed)}, got {getattr(config, key)!r}")


@dataclasses.dataclass
class RunSection(ConfigSection):
    """What to train, where, and the engine's knobs: keys every recipe reads."""

    model: str = option("smollm2-135m-instruct", "Model to start from: a Hugging Face name, a local path, or a built-in name (smollm2-135m-instruct, tiny).")
    output_dir: str = option("runs/run", "Run directory: resolved config, metrics.jsonl, checkpoints and the final model.")
    seed: int = option(0, "Seed for data order, head initialisation and sampling.")
    max_steps: int = option(100, "Number of optimizer steps.")
    batch_size: int = option(8, "Global batch: examples per optimizer step, summed over processes and accumulation steps.")
    gradient_accumulation_steps: int = option(1, "Micro-batches per optimizer step on each process; batch_size must divide evenly.")
    bf16: bool = option(False, "Mixed precision in bfloat16 (autocast); weights and optimizer stay float32.")
    dtype: str = option("float32", "dtype the model weights are loaded in: float32 or bfloat16.")
    resume: bool = option(False, "Continue from the newest checkpoint in output_dir.")
    overwrite: bool = option(False, "Start afresh in an output_dir that holds another run: delete its checkpoints, metrics, eval.json and model/ first (without it, or resume, such a directory is refused).")
    logging_steps: int = option(1, "Write metrics every N optimizer steps.")
    report_to: str = option("none", "Extra trackers through accelerate: none, tensorboard, wandb (comma-separated).")
    progress: bool = option(True, "Show a progress bar with ETA.")
    cache_dir: str = option("", "Where converted built-in models are cached (default: $PREFRL_CACHE or ~/.cache/prefrl).")
    gradient_checkpointing: bool = option(False, "Recompute activations in the backward pass instead of keeping them (Hugging Face gradient checkpointing, non-reentrant): less memory, ~30% more compute.")
    num_threads: int = option(0, "CPU intra-op threads for torch (0: every core this process may use; idle OpenMP threads sleep, so a busy machine slows a run ~2× at most, docs/benchmarks.md). 1 when several jobs share the cores.")

    def validate(self) -> None:
        super().validate()
        _at_least(self, 1, "max_steps", "batch_size", "gradient_accumulation_steps", "logging_steps")
        _at_least(self, 0, "num_threads")
        if self.resume and self.overwrite:
            raise ConfigError("resume=true and overwrite=true contradict each other: resume continues the run in output_dir, overwrite deletes it")
        _one_of(self, "dtype", ("float32", "bfloat16"))
        for tracker in (t.strip() for t in self.report_to.split(",") if t.strip()):
            if tracker not in ("none", "tensorboard", "wandb"):
                raise ConfigError(f"config key 'report_to': unknown tracker {tracker!r} (none, tensorboard, wandb)")


@dataclasses.dataclass
class OptimSection(ConfigSection):
    """AdamW and its learning-rate schedule."""

    lr: float = option(1e-5, "Peak learning rate (AdamW).")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    adam_beta1: float = option(0.9, "AdamW beta1.")
    adam_beta2: float = option(0.999, "AdamW beta2.")
    warmup_ratio: float = option(0.1, "Fraction of max_steps spent warming the learning rate up linearly from 0.")
    lr_scheduler: str = option("cosine", "Decay after warm-up: cosine, linear or constant.")
    max_grad_norm: float = option(1.0, "Clip the global gradient norm to this value (0 disables clipping).")

    def validate(self) -> None:
        super().validate()
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"config key 'lr' must be a positive finite number, got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"config key 'warmup_ratio' must be in [0, 1), got {self.warmup_ratio}")
        _one_of(self, "lr_scheduler", ("cosine", "linear", "constant"))


@dataclasses.dataclass
class CheckpointSection(ConfigSection):
    """Resumable checkpoints during the run."""

    save_steps: int = option(0, "Write a resumable checkpoint every N optimizer steps (0: only at the end).")
    save_total_limit: int = option(2, "Keep at most this many step checkpoints (oldest removed first; 0 keeps all).")

    def validate(self) -> None:
        super().validate()
        _at_least(self, 0, "save_steps", "save_total_limit")


@dataclasses.dataclass
class DataSection(ConfigSection):
    """The training data."""

    data: str = option("constraints", "Training data: a built-in task (constraints, the default every recipe is tuned on; arithmetic), a local jsonl/json/parquet/csv file, or a Hugging Face dataset name.")
    train_split: str = option("train", "Split of `data` to train on (a file without splits: its rows not held out for evaluation).")
    num_train: int = option(0, "Rows of a built-in task to generate for training, or rows of a file to keep (0: all; tasks default to 1000).")
    data_seed: int = option(0, "Seed of the built-in task generator (kept apart from `seed`, so every run sees the same test split).")

    def validate(self) -> None:
        super().validate()
        _at_least(self, 0, "num_train")


@dataclasses.dataclass
class EvaluationSection(DataSection):
    """The held-out evaluation at the end of the run (and of the initial model where the recipe
    compares the two); it extends the data section with where the held-out rows come from."""

    eval_split: str = option("test", "Split of `data` to evaluate on (a file without splits: the rows held out by eval_fraction, or eval_data).")
    eval_data: str = option("", "Evaluation data, kept apart from `data`: a file or dataset name (default: a built-in task's or dataset's eval_split, or for a file the held-out eval_fraction of its rows).")
    eval_fraction: float = option(0.1, "When `data` is a file without splits, no eval_data is given and num_eval > 0: the fraction of its prompts held out for evaluation (deterministic in data_seed; all rows of a prompt go the same way).")
    num_eval: int = option(200, "Rows for evaluation at the end (0 disables the final evaluation).")
    eval_batch_size: int = option(16, "Rows per forward or generation call in evaluation.")

    def __post_init__(self) -> None:
        # The loaders split a file into train/eval rows; they learn this run's settings here, so a
        # recipe's `load_preference_pairs(config.data, config.eval_split, ...)` gets the held-out rows.
        from prefrl.data.loaders import configure_splits

        configure_splits(
            self.data, self.train_split, self.eval_split, eval_data=self.eval_data, eval_fraction=self.eval_fraction, evaluates=self.num_eval > 0
        )

    def validate(self) -> None:
        super().validate()
        _at_least(self, 0, "num_eval")
        _at_least(self, 1, "eval_batch_size")
        if not 0 <= self.eval_fraction < 1:
            raise ConfigError(f"config key 'eval_fraction' must be in [0, 1), got {self.eval_fraction}")
        if self.train_split == self.eval_split and not self.eval_data and self.num_eval:
            raise ConfigError(f"train_split and eval_split are both {self.train_split!r}: evaluation would score training rows (set eval_split, eval_data, or num_eval=0)")


@dataclasses.dataclass
class MaxLengthSection(ConfigSection):
    """The longest tokenized training row, checked before the first step."""

    max_length: int = option(512, "Longest tokenized sequence (prompt + response); longer rows are an error at start-up.")

    def validate(self) -> None:
        super().validate()
        _at_least(self, 1, "max_length")


@dataclasses.dataclass
class TrainConfig(MaxLengthSection, EvaluationSection, CheckpointSection, OptimSection, RunSection):
    """The sections a supervised recipe on preference pairs reads (and what the engine's tests build)."""


def config_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


# TRL's name -> prefrl's key. An alias applies only where the recipe has the key it stands for and
# not a key of the TRL name itself: `beta` is the KL coefficient of the RL recipes (kl_coef) but
# stays `beta` in DPO and SPPO, which have their own beta. The README's "TRL names" lists the same.
TRL_ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "max_completion_length": "max_new_tokens",
    "epsilon": "clip_eps",
    "epsilon_high": "clip_eps_high",
    "num_iterations": "ppo_epochs",
    "model_name_or_path": "model",
    "dataset_name": "data",
    "lr_scheduler_type": "lr_scheduler",
    "resume_from_checkpoint": "resume",
    "beta": "kl_coef",
}
# TRL names that look like a prefrl key but mean something else: refused with the reason.
NOT_ALIASES: dict[str, str] = {
    "per_device_train_batch_size": (
        "prefrl's batch_size is the global batch (examples per optimizer step over all processes and accumulation "
        "steps), not per device: set batch_size = per_device_train_batch_size × processes × gradient_accumulation_steps"
    ),
}


# Keys a release removed -> the key that replaced them and how to use it. Checked before the
# unknown-key error, so an old config says what to write instead.
RENAMED_KEYS: dict[str, tuple[str, str]] = {
    "reward_model": ("reward", "reward=RUN_DIR (or gold, module:function, hf:MODEL, http://HOST:PORT/PATH)"),
    "oracle": ("reward", "reward=RUN_DIR (SPPO's oracle; empty for the task's gold judge)"),
    "judge": ("reward", "reward=RUN_DIR (pairwise PPO's judge, scored against the anchor; empty for the task's gold judge)"),
}


def resolve_key(key: str, cls: type) -> str | None:
    """The config key `key` names in `cls`: itself, or the key a TRL alias stands for; None if neither."""
    fields = config_fields(cls)
    if key in fields:
        return key
    target = TRL_ALIASES.get(key)
    return target if target in fields else None


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _coerce(key: str, value: Any, tp: Any) -> Any:
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config key {key!r}: a value is required")
    try:
        if isinstance(value, (dict, list, tuple, set)) and typing.get_origin(tp) is not list:
            raise ValueError(f"expected a single value, got a {type(value).__name__}")
        if tp is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(f"not an integer: {value!r}")
            return int(float(value)) if isinstance(value, str) and ("e" in value.lower()) else int(value)
        if tp is float:
            result = float(value)
            if math.isnan(result):
                raise ValueError("NaN is not a valid value")
            return result
        if tp is str:
            return str(value)
        if typing.get_origin(tp) is list:
            (item_tp,) = typing.get_args(tp) or (str,)
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            return [_coerce(key, v, item_tp) for v in value]
    except (TypeError, ValueError, OverflowError) as error:
        raise ConfigError(f"config key {key!r}: cannot read {value!r} as {getattr(tp, '__name__', tp)} ({error})") from None
    return value


def _unknown_key_error(key: Any, cls: type, source: str, recipe: str | None = None) -> ConfigError:
    key = str(key)
    where = f" for recipe {recipe!r}" if recipe else ""
    valid = sorted(config_fields(cls))
    if key in RENAMED_KEYS and RENAMED_KEYS[key][0] in valid:
        new_key, usage = RENAMED_KEYS[key]
        return ConfigError(f"config key {key!r} ({source}) was renamed: use {usage}")
    if key in NOT_ALIASES:
        return ConfigError(f"config key {key!r}{where} ({source}) is not accepted: {NOT_ALIASES[key]}")
    if key in TRL_ALIASES:
        return ConfigError(
            f"config key {key!r}{where} ({source}) is TRL's name for {TRL_ALIASES[key]!r}, which this recipe does not have. Valid keys: {', '.join(valid)}"
        )
    close = difflib.get_close_matches(key, valid + sorted(a for a, t in TRL_ALIASES.items() if t in valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}{where} ({source}).{hint} Valid keys: {', '.join(valid)}")


def normalise_key(key: str) -> str:
    """`--learning-rate`, `learning-rate` and `learning_rate` are the same key."""
    return key.strip().lstrip("-").replace("-", "_")


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (or --key value)")
        key, value = item.split("=", 1)
        key = normalise_key(key)
        if not key:
            raise ConfigError(f"override {item!r} has no key before '='")
        parsed[key] = value
    return parsed


def load_config(cls: type[C], config_file: str | None = None, overrides: list[str] | None = None, recipe: str | None = None) -> C:
    """Build `cls` from an optional YAML file and `key=value` overrides (overrides win); a key `cls`
    does not have is an error that names `recipe`."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        if path.is_dir():
            raise ConfigError(f"config file {config_file!r} is a directory; expected a YAML file of config keys")
        if not path.is_file():
            raise ConfigError(f"config file {config_file!r} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as error:
            raise ConfigError(f"config file {config_file!r} is not UTF-8 text ({error.reason} at byte {error.start})") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {config_file!r} is not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file!r} must hold a mapping of keys to values")
        for key, value in loaded.items():
            name = resolve_key(key, cls) if isinstance(key, str) else None
            if name is None:
                raise _unknown_key_error(key, cls, f"in {config_file}", recipe)
            values[name] = _coerce(name, value, hints[name])
    for key, value in parse_overrides(overrides or []).items():
        name = resolve_key(key, cls)
        if name is None:
            raise _unknown_key_error(key, cls, "on the command line", recipe)
        values[name] = _coerce(name, value, hints[name])
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def format_config(config: Any) -> str:
    return yaml.safe_dump(config_to_dict(config), sort_keys=False).rstrip()


def config_help(cls: type) -> str:
    """One line per key with its default and help, for `--help`."""
    lines = []
    for field in dataclasses.fields(cls):
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        lines.append(f"  {field.name} (default {default!r})\n      {field.metadata.get('help', '')}")
    return "\n".join(lines)
