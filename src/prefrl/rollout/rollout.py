"""A rollout: K sampled responses for each of B prompts, with the log-probs RL needs.

`collect_rollout` is the whole sampling stage: render the prompts with the chat template, sample
with a generation backend, then one no-grad forward of the policy (old log-probs, and the last-layer
hidden states when R2M asks for them — the same pass, not an extra one) and one of the reference.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Sequence

import torch

from prefrl.data.batching import encode, pad_sequences
from prefrl.data.records import PromptRecord
from prefrl.data.templates import render_prompt
from prefrl.models.policy import PolicyModel
from prefrl.rollout.generation import GenerationBackend, SamplingParams


# What a tensor field's columns are, so slicing rows and trimming padding columns follow from the
# field's kind, whatever it is called (`dataclasses.field(metadata={"kind": ...})`):
SEQUENCE = "sequence"  # (N, P + R, …): prompt then response columns
PER_TOKEN = "per-token"  # (N, R): one value per response column
PER_ROW = "per-row"  # (N, …): one value per row, no columns to trim
SIDE_SEQUENCE = "side-sequence"  # a SideInput: another sequence that ends with the response columns


def _field(kind: str, default: Any = MISSING) -> Any:
    return field(default=default, metadata={"kind": kind})


@dataclass
class SideInput:
    """A second model's input for the same rows: (N, S) ids and mask whose last R columns are the
    response columns of the rollout (pairwise PPO's value model reads [prompt + anchor | response])."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def rows(self, index: torch.Tensor) -> "SideInput":
        return SideInput(self.input_ids[index], self.attention_mask[index])

    def drop_last_columns(self, count: int) -> "SideInput":
        if not count:
            return self
        width = self.input_ids.shape[1] - count
        return SideInput(self.input_ids[:, :width], self.attention_mask[:, :width])


@dataclass
class Rollout:
    """N = B·K rows, group-contiguous: rows bK … bK+K−1 answer prompt b."""

    prompts: list[PromptRecord]  # B
    group_size: int  # K
    input_ids: torch.Tensor = _field(SEQUENCE)  # (N, P + R) [left-padded prompt | right-padded response]
    attention_mask: torch.Tensor = _field(SEQUENCE)  # (N, P + R)
    response_mask: torch.Tensor = _field(PER_TOKEN)  # (N, R) 1 on generated tokens (the final EOS included)
    prompt_length: int  # P
    responses: list[str]  # N decoded responses (special tokens removed)
    logprobs: torch.Tensor | None = _field(PER_TOKEN)  # (N, R) log π_old(token), sampling temperature applied; None when skipped
    ref_logprobs: torch.Tensor | None = _field(PER_TOKEN, None)  # (N, R) log π_ref(token)
    hidden_states: torch.Tensor | None = _field(SEQUENCE, None)  # (N, P + R, d) policy's last layer
    # What a recipe adds after sampling:
    advantages: torch.Tensor | None = _field(PER_TOKEN, None)  # (N, R) per-token advantages (PPO's GAE)
    returns: torch.Tensor | None = _field(PER_TOKEN, None)  # (N, R) GAE returns, the value model's targets
    old_values: torch.Tensor | None = _field(PER_TOKEN, None)  # (N, R) the value model's values at sampling
    sequence_advantages: torch.Tensor | None = _field(PER_ROW, None)  # (N,) one advantage per response (GRPO, RLOO)
    row_index: torch.Tensor | None = _field(PER_ROW, None)  # (N,) each row's index in the whole rollout (R2M fills rewards by it)
    value_input: SideInput | None = _field(SIDE_SEQUENCE, None)  # the value model's own input (pairwise PPO); None: input_ids

    @property
    def num_rows(self) -> int:
        return self.input_ids.shape[0]

    @property
    def row_prompts(self) -> list[Any]:
        """The prompt (text or messages) of each of the N rows."""
        return [self.prompts[i // self.group_size].prompt for i in range(self.num_rows)]

    @property
    def response_lengths(self) -> torch.Tensor:
        return self.response_mask.sum(-1)

    def value_model_input(self) -> SideInput:
        """What the value model reads: its own input where the recipe set one, else the rollout's."""
        return self.value_input if self.value_input is not None else SideInput(self.input_ids, self.attention_mask)

    def rows(self, index: torch.Tensor | Sequence[int]) -> "Rollout":
        """The sub-rollout of the given rows (for micro-batches); prompt-level fields are kept whole."""
        index = torch.as_tensor(index, dtype=torch.long)
        picked = {name: value.rows(index) if kind == SIDE_SEQUENCE else value[index] for name, (kind, value) in _row_fields(self).items()}
        return replace(self, responses=[self.responses[i] for i in index.tolist()], **picked)


def _row_fields(rollout: Rollout, kinds: tuple[str, ...] = (SEQUENCE, PER_TOKEN, PER_ROW, SIDE_SEQUENCE)) -> dict[str, tuple[str, Any]]:
    """The set (not None) fields of the given kinds: name -> (kind, value)."""
    found = {}
    for f in fields(rollout):
        kind, value = f.metadata.get("kind"), getattr(rollout, f.name)
        if kind in kinds and value is not None:
            found[f.name] = (kind, value)
    return found


def trim(rollout: Rollout) -> Rollout:
    """Drop columns that are padding in every row: leading prompt columns, trailing response columns.

    Each field loses the columns its kind has: sequences both, per-token fields the trailing ones,
    side sequences (which end with the response columns) the same trailing ones; per-row fields none."""
    prompt_cols = rollout.attention_mask[:, : rollout.prompt_length].any(0).nonzero()
    first = int(prompt_cols[0]) if len(prompt_cols) else rollout.prompt_length - 1
    first = min(first, rollout.prompt_length - 1)  # keep at least one prompt column (it predicts token 1)
    response_cols = rollout.response_mask.any(0).nonzero()
    last = int(response_cols[-1]) + 1 if len(response_cols) else 1
    total_end = rollout.prompt_length + last
    cut = rollout.response_mask.shape[1] - last
    column_cuts = {
        SEQUENCE: lambda t: t[:, first:total_end],
        PER_TOKEN: lambda t: t[:, :last],
        SIDE_SEQUENCE: lambda side: side.drop_last_columns(cut),
    }
    trimmed = {name: column_cuts[kind](value) for name, (kind, value) in _row_fields(rollout, tuple(column_cuts)).items()}
    return replace(rollout, prompt_length=rollout.prompt_length - first, **trimmed)


def _group_chunks(num_rows: int, group_size: int, chunk_size: int) -> list[slice]:
    """Row slices of whole groups, about `chunk_size` rows each (at least one group)."""
    rows = max(group_size, chunk_size // group_size * group_size)
    return [slice(start, start + rows) for start in range(0, num_rows, rows)]


@torch.no_grad()
def policy_forward_in_chunks(
    policy: PolicyModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int, temperature: float, chunk_size: int,
    return_hidden: bool = False, group_size: int = 1,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (and hidden states) of group-contiguous rows without a graph, whole groups of about
    `chunk_size` rows at a time; each prompt is encoded once for its group, padding never computed."""
    device = next(policy.parameters()).device
    was_training = policy.training
    policy.eval()
    logprobs, hidden = [], []
    for rows in _group_chunks(input_ids.shape[0], group_size, chunk_size):
        ids, mask = input_ids[rows].to(device), attention_mask[rows].to(device)
        output = policy(
            ids[::group_size, :prompt_length], mask[::group_size, :prompt_length], prompt_length, temperature=temperature, return_hidden=return_hidden,
            response_ids=ids[:, prompt_length:], response_mask=mask[:, prompt_length:],
        )
        logprobs.append(output.logprobs.float().cpu())
        if return_hidden:
            hidden.append(output.hidden_states.cpu())
    policy.train(was_training)
    return torch.cat(logprobs), (torch.cat(hidden) if return_hidden else None)


@torch.no_grad()
def policy_hidden_in_chunks(
    policy: PolicyModel, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_length: int, group_size: int, chunk_size: int, bf16: bool = False
) -> torch.Tensor:
    """(N, P + R, d) last-layer states of group-contiguous rows, no graph and no output layer.

    Each prompt is encoded once for its K responses; whole groups of about `chunk_size` rows go
    through at a time. `bf16` runs the pass under bfloat16 autocast (float32 states come back)."""
    module = getattr(policy, "module", policy)  # the method lives on the unwrapped model
    device = next(module.parameters()).device
    was_training = module.training
    module.eval()
    hidden = []
    for rows in _group_chunks(input_ids.shape[0], group_size, chunk_size):
        ids, mask = input_ids[rows].to(device), attention_mask[rows].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            states = module.hidden_states(ids[::group_size, :prompt_length], mask[::group_size, :prompt_length], ids[:, prompt_length:], mask[:, prompt_length:])
        hidden.append(states.float().cpu())
    module.train(was_training)
    return torch.cat(hidden)


def build_sequences(prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]], group_size: int, pad_token_id: int):
    """(input_ids, attention_mask, response_mask, P): prompts left-padded, responses right-padded."""
    reversed_prompts, reversed_mask = pad_sequences([list(reversed(p)) for p in prompt_ids], pad_token_id)
    prompts, prompt_mask = reversed_prompts.flip(-1), reversed_mask.flip(-1)
    prompts = prompts.repeat_interleave(group_size, dim=0)
    prompt_mask = prompt_mask.repeat_interleave(group_size, dim=0)
    responses, response_mask = pad_sequences([r if r else [pad_token_id] for r in response_ids], pad_token_id)
    for row, response in enumerate(response_ids):
        if not response:  # an empty response keeps one masked pad so shapes stay valid
            response_mask[row] = 0
    input_ids = torch.cat([prompts, responses], dim=-1)
    attention_mask = torch.cat([prompt_mask, response_mask], dim=-1)
    return input_ids, attention_mask, response_mask, prompts.shape[1]


def collect_rollout(
    policy: PolicyModel,
    backend: GenerationBackend,
    tokenizer: Any,
    prompts: Sequence[PromptRecord],
    params: SamplingParams,
    generator: torch.Generator,
    reference: PolicyModel | None = None,
    return_hidden: bool = False,
    forward_chunk_size: int = 16,
    logprob_temperature: float | None = None,
    old_logprobs: bool = True,
) -> Rollout:
    """Sample, then score the samples under the policy (and reference) in one no-grad pass each.

    Log-probs use the sampling temperature unless `logprob_temperature` says otherwise (SPPO needs
    log π_t(y|x) of the policy itself, at temperature 1). `old_logprobs=False` skips the policy pass
    when the update will take π_old from its own forward (one clipped pass per rollout: ρ = 1)."""
    prompt_ids = [encode(tokenizer, render_prompt(tokenizer, p.prompt)) for p in prompts]
    response_ids = backend.generate(prompt_ids, params, generator)
    group_size = len(response_ids) // len(prompt_ids)
    input_ids, attention_mask, response_mask, prompt_length = build_sequences(prompt_ids, response_ids, group_size, tokenizer.pad_token_id)
    temperature = 1.0 if params.greedy else params.temperature
    if logprob_temperature is not None:
        temperature = logprob_temperature
    logprobs = hidden = None
    if old_logprobs or return_hidden:
        logprobs, hidden = policy_forward_in_chunks(policy, input_ids, attention_mask, prompt_length, temperature, forward_chunk_size, return_hidden, group_size)
    ref_logprobs = None
    if reference is not None:
        ref_logprobs, _ = policy_forward_in_chunks(reference, input_ids, attention_mask, prompt_length, temperature, forward_chunk_size, group_size=group_size)
    texts = tokenizer.batch_decode(response_ids, skip_special_tokens=True)
    return Rollout(
        prompts=list(prompts),
        group_size=group_size,
        input_ids=input_ids,
        attention_mask=attention_mask,
        response_mask=response_mask,
        prompt_length=prompt_length,
        responses=[t.strip() for t in texts],
        logprobs=None if logprobs is None else logprobs * response_mask,
        ref_logprobs=None if ref_logprobs is None else ref_logprobs * response_mask,
        hidden_states=hidden,
    )
