"""Recipe configs: one dataclass per recipe, loaded from YAML with `key=value` overrides.

Every field carries its help text in `metadata["help"]` so `prefrl train <recipe> --help` can list
them. Unknown keys fail with the list of valid ones; values are coerced to the field's type.
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


@dataclasses.dataclass
class TrainConfig:
    """Keys every training recipe accepts: what to train, on what, where, and the engine's knobs."""

    model: str = option("smollm2-135m-instruct", "Model to start from: a Hugging Face name, a local path, or a built-in name (smollm2-135m-instruct, tiny).")
    data: str = option("arithmetic", "Training data: a built-in task (arithmetic, constraints), a local jsonl/json/parquet/csv file, or a Hugging Face dataset name.")
    output_dir: str = option("runs/run", "Run directory: resolved config, metrics.jsonl, checkpoints and the final model.")
    seed: int = option(0, "Seed for data order, head initialisation and sampling.")
    max_steps: int = option(100, "Number of optimizer steps.")
    batch_size: int = option(8, "Global batch: examples per optimizer step, summed over processes and accumulation steps.")
    lr: float = option(1e-5, "Peak learning rate (AdamW).")
    gradient_accumulation_steps: int = option(1, "Micro-batches per optimizer step on each process; batch_size must divide evenly.")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    adam_beta1: float = option(0.9, "AdamW beta1.")
    adam_beta2: float = option(0.999, "AdamW beta2.")
    warmup_ratio: float = option(0.1, "Fraction of max_steps spent warming the learning rate up linearly from 0.")
    lr_scheduler: str = option("cosine", "Decay after warm-up: cosine, linear or constant.")
    max_grad_norm: float = option(1.0, "Clip the global gradient norm to this value (0 disables clipping).")
    bf16: bool = option(False, "Mixed precision in bfloat16 (autocast); weights and optimizer stay float32.")
    dtype: str = option("float32", "dtype the model weights are loaded in: float32 or bfloat16.")
    save_steps: int = option(0, "Write a resumable checkpoint every N optimizer steps (0: only at the end).")
    save_total_limit: int = option(2, "Keep at most this many step checkpoints (oldest removed first; 0 keeps all).")
    resume: bool = option(False, "Continue from the newest checkpoint in output_dir.")
    logging_steps: int = option(1, "Write metrics every N optimizer steps.")
    report_to: str = option("none", "Extra trackers through accelerate: none, tensorboard, wandb (comma-separated).")
    progress: bool = option(True, "Show a progress bar with ETA.")
    max_length: int = option(512, "Longest tokenized sequence (prompt + response); longer rows are an error at start-up.")
    train_split: str = option("train", "Split of `data` to train on.")
    eval_split: str = option("test", "Split of `data` to evaluate on.")
    num_train: int = option(0, "Rows of a built-in task to generate for training, or rows of a file to keep (0: all; tasks default to 1000).")
    num_eval: int = option(200, "Rows for evaluation at the end (0 disables the final evaluation).")
    cache_dir: str = option("", "Where converted built-in models are cached (default: $PREFRL_CACHE or ~/.cache/prefrl).")
    num_threads: int = option(0, "CPU intra-op threads for torch (0: every core this process may use; idle OpenMP threads sleep, so a busy machine slows a run ~2× at most, docs/benchmarks.md). 1 when several jobs share the cores.")

    def validate(self) -> None:
        """Checks that need no model or data; the engine checks what depends on the world size."""
        positive = ("max_steps", "batch_size", "gradient_accumulation_steps", "logging_steps", "max_length")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"config key {key!r} must be at least 1, got {getattr(self, key)}")
        for key in ("save_steps", "save_total_limit", "num_train", "num_eval", "num_threads"):
            if getattr(self, key) < 0:
                raise ConfigError(f"config key {key!r} must be 0 or more, got {getattr(self, key)}")
        if not self.lr > 0:
            raise ConfigError(f"config key 'lr' must be positive, got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"config key 'warmup_ratio' must be in [0, 1), got {self.warmup_ratio}")
        choices = {"lr_scheduler": ("cosine", "linear", "constant"), "dtype": ("float32", "bfloat16")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"config key {key!r} must be one of {', '.join(allowed)}, got {getattr(self, key)!r}")
        trackers = [t.strip() for t in self.report_to.split(",") if t.strip()]
        for tracker in trackers:
            if tracker not in ("none", "tensorboard", "wandb"):
                raise ConfigError(f"config key 'report_to': unknown tracker {tracker!r} (none, tensorboard, wandb)")


def config_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


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
    except (TypeError, ValueError) as error:
        raise ConfigError(f"config key {key!r}: cannot read {value!r} as {getattr(tp, '__name__', tp)} ({error})") from None
    return value


def _unknown_key_error(key: str, cls: type, source: str) -> ConfigError:
    valid = sorted(config_fields(cls))
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r} ({source}).{hint} Valid keys: {', '.join(valid)}")


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, value = item.split("=", 1)
        parsed[key.strip().lstrip("-").replace("-", "_")] = value
    return parsed


def load_config(cls: type[C], config_file: str | None = None, overrides: list[str] | None = None) -> C:
    """Build `cls` from an optional YAML file and `key=value` overrides (overrides win)."""
    fields = config_fields(cls)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {config_file!r} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {config_file!r} is not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file!r} must hold a mapping of keys to values")
        for key, value in loaded.items():
            if key not in fields:
                raise _unknown_key_error(key, cls, f"in {config_file}")
            values[key] = _coerce(key, value, hints[key])
    for key, value in parse_overrides(overrides or []).items():
        if key not in fields:
            raise _unknown_key_error(key, cls, "on the command line")
        values[key] = _coerce(key, value, hints[key])
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
