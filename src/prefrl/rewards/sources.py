"""Reward sources from outside prefrl: a Python function (TRL's `reward_funcs` signature), a Hugging
Face sequence-classification reward model, and a remote reward server (OpenRLHF's contract)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import torch

from prefrl.data.templates import flatten_conversation, render_conversation
from prefrl.errors import ConfigError, PrefrlError
from prefrl.rewards.base import RewardRows, RewardSource, as_float_rewards


class RewardSourceError(PrefrlError):
    """A reward source failed at run time (a function raised, a server is down)."""


def load_function(spec: str) -> Callable[..., Any]:
    """`path/to/file.py:function` or `package.module:function`."""
    target, _, function_name = spec.rpartition(":")
    if not target or not function_name.isidentifier():
        raise ConfigError(f"reward={spec!r}: a reward function is given as module:function or path/to/file.py:function")
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise ConfigError(f"reward={spec!r}: no such file {str(path)!r}")
        module_spec = importlib.util.spec_from_file_location(f"prefrl_reward_{path.stem}", path)
        module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
        try:
            module_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as error:
            raise ConfigError(f"reward={spec!r}: importing {path} failed: {type(error).__name__}: {error}") from error
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise ConfigError(f"reward={spec!r}: cannot import module {target!r} ({error})") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"reward={spec!r}: {target} has no function {function_name!r}")
    return function


class FunctionReward(RewardSource):
    """f(prompts, completions, **columns) -> list[float | None], TRL's `reward_funcs` signature.

    Prompts are passed as the dataset has them (strings or message lists); completions as strings
    for string prompts and as [{"role": "assistant", "content": ...}] for conversational ones, as TRL
    does; every extra dataset column (e.g. `ground_truth`) as a keyword, one entry per completion.
    None entries become NaN: the row is left out of a weighted sum for this function."""

    def __init__(self, function: Callable[..., Any], name: str):
        self.function, self.name = function, name

    def score(self, rows: RewardRows) -> torch.Tensor:
        completions = [[{"role": "assistant", "content": r}] if isinstance(p, list) else r for p, r in zip(rows.prompts, rows.responses)]
        try:
            values = self.function(prompts=list(rows.prompts), completions=completions, **rows.columns)
        except Exception as error:
            raise RewardSourceError(f"reward function {self.name} raised {type(error).__name__}: {error}") from error
        return as_float_rewards(values, len(rows), f"reward function {self.name}")


class HFRewardModel(RewardSource):
    """Any Hugging Face AutoModelForSequenceClassification with one label (a TRL, OpenRLHF or hub
    reward model): r(x, y) = its logit on the chat-templated conversation, as TRL's RewardTrainer
    trains it."""

    def __init__(self, name_or_path: str, batch_size: int = 16, max_length: int = 2048):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name, self.batch_size, self.max_length = name_or_path, batch_size, max_length
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            self.model = AutoModelForSequenceClassification.from_pretrained(name_or_path).eval()
        except (OSError, ValueError) as error:
            raise ConfigError(f"reward=hf:{name_or_path}: cannot load a sequence-classification reward model ({error})") from error
        if self.model.config.num_labels != 1:
            raise ConfigError(f"reward=hf:{name_or_path}: a reward model has one label (num_labels=1); this one has {self.model.config.num_labels}")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.model.config.pad_token_id is None:  # the classifier finds the last token through it
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.tokenizer.padding_side = "right"
        self.autocast = False

    @property
    def bf16(self) -> bool:
        return self.autocast

    @bf16.setter
    def bf16(self, value: bool) -> None:
        self.autocast = value

    @torch.no_grad()
    def score(self, rows: RewardRows) -> torch.Tensor:
        texts = [render_conversation(self.tokenizer, p, r) for p, r in zip(rows.prompts, rows.responses)]
        device = next(self.model.parameters()).device
        scores = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt", add_special_tokens=False
            ).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast):
                scores.append(self.model(**batch).logits[:, 0].float().cpu())
        return torch.cat(scores) if scores else torch.zeros(0)


class RemoteReward(RewardSource):
    """A reward server with OpenRLHF's contract: POST {"query": [prompt + response, …], "prompts":
    [prompt, …]} → {"rewards": [float, …]}. Prompts go as plain text (a conversation as "Role:
    content" lines). Each call is retried `retries` times after the first, with doubling waits."""

    def __init__(self, url: str, timeout: float = 60.0, retries: int = 3, backoff_s: float = 0.5):
        self.name, self.url, self.timeout, self.retries, self.backoff_s = url, url, timeout, retries, backoff_s

    def score(self, rows: RewardRows) -> torch.Tensor:
        prompts = [flatten_conversation(p) for p in rows.prompts]
        body = json.dumps({"query": [p + r for p, r in zip(prompts, rows.responses)], "prompts": prompts}).encode()
        reply = self.post(body)
        if not isinstance(reply, dict) or "rewards" not in reply:
            raise RewardSourceError(f"reward server {self.url} answered without a 'rewards' list: {str(reply)[:200]}")
        return as_float_rewards(reply["rewards"], len(rows), f"reward server {self.url}")

    def post(self, body: bytes) -> Any:
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode())
            except urllib.error.HTTPError as error:
                last_error = error
                if error.code < 500:  # the request is wrong: retrying will not help
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as error:
                last_error = error
        reason = getattr(last_error, "reason", None) or last_error
        raise RewardSourceError(f"reward server {self.url} did not answer ({reason}) after {self.retries + 1} tries (reward_timeout={self.timeout:g}s, reward_retries={self.retries})")
