"""Packing prompt groups into rows without padding: each prompt once, its G responses after it.

A group is a prompt and the G responses that answer it (DPO: chosen and rejected; GRPO: the K
samples). Laid out padded, a batch wastes the columns where short prompts and short responses are
padded to the longest — about 40 % of the tokens on the `arithmetic` DPO pairs. Packed, a row holds
whole groups back to back,

    [ prompt₁ | response₁₁ | response₁₂ | prompt₂ | response₂₁ | … | pad ]

and a 4-D attention mask lets a token see only what it would see alone: its own group's prompt and
the earlier tokens of its own response (never another response or another group). Positions restart
for every group and continue from the prompt into each response, exactly as in the padded layout,
so the hidden states equal those of each prompt + response encoded alone. The attention over a row
is quadratic in its length, so groups are spread over rows of about `max_row_tokens` each (or of
the longest group, when longer); the only padding left is where a row is shorter than the widest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass
class PackedGroups:
    input_ids: torch.Tensor  # (rows, T) groups back to back, pad at each row's end
    position_ids: torch.Tensor  # (rows, T) restarting at 0 for every group
    attention_mask: torch.Tensor  # (rows, 1, T, T) bool, True where a query may attend a key
    predicting: torch.Tensor  # (N, R) flat index (row·T + column) of the state predicting each response token; −1 on padding
    layout: torch.Tensor  # (N, P + R) flat index of each column of the padded layout [prompt | response]; −1 on padding

    def gather(self, states: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(rows, T, d) states -> (*index.shape, d), zeros where the index is −1."""
        flat = states.reshape(-1, states.shape[-1])
        picked = flat[index.clamp(min=0)]
        return picked * (index >= 0).unsqueeze(-1).to(picked.dtype)


def _balanced_rows(lengths: list[int], max_row_tokens: int) -> list[list[int]]:
    """Groups (by length) to rows: as many rows as the token budget needs, longest group first onto
    the currently shortest row, each row's groups kept in their original order. A group longer than
    the budget is not split, so the budget grows to it (rows are padded to the widest row)."""
    budget = max(max_row_tokens, max(lengths))
    rows = max(1, math.ceil(sum(lengths) / budget))
    rows = min(rows, len(lengths))
    members: list[list[int]] = [[] for _ in range(rows)]
    totals = [0] * rows
    for group in sorted(range(len(lengths)), key=lambda g: -lengths[g]):
        row = min(range(rows), key=lambda r: totals[r])
        members[row].append(group)
        totals[row] += lengths[group]
    return [sorted(m) for m in members if m]


def pack_groups(
    prompt_ids: torch.Tensor,  # (B, P) left-padded
    prompt_mask: torch.Tensor,  # (B, P)
    response_ids: torch.Tensor,  # (G·B, R) right-padded, grouped by prompt
    response_mask: torch.Tensor,  # (G·B, R)
    pad_token_id: int = 0,
    max_row_tokens: int = 512,
    group_sizes: Sequence[int] | None = None,  # responses per prompt, in order; default G·B / B each
) -> PackedGroups:
    batch, prompt_width = prompt_ids.shape
    rows_out, response_width = response_ids.shape
    sizes = list(group_sizes) if group_sizes is not None else [rows_out // batch] * batch
    if len(sizes) != batch or sum(sizes) != rows_out:
        raise ValueError(f"pack_groups: {batch} prompts with group sizes {sizes} do not cover {rows_out} responses")
    first = [sum(sizes[:b]) for b in range(batch)]  # first response row of each group
    prompts = [prompt_ids[b][prompt_mask[b].bool()].tolist() for b in range(batch)]
    responses = [response_ids[n][response_mask[n].bool()].tolist() for n in range(rows_out)]
    if any(len(p) == 0 for p in prompts):
        raise ValueError("pack_groups: a prompt has no tokens (its first response token would have no state to be predicted from)")
    lengths = [len(prompts[b]) + sum(len(responses[first[b] + g]) for g in range(sizes[b])) for b in range(batch)]
    row_members = _balanced_rows(lengths, max_row_tokens)
    width = max(sum(lengths[b] for b in members) for members in row_members)

    input_ids = torch.full((len(row_members), width), pad_token_id, dtype=prompt_ids.dtype)
    position_ids = torch.zeros((len(row_members), width), dtype=torch.long)
    # Per column: which group it belongs to and which of its responses (−1: the prompt); padding
    # gets a group of its own per column, so it attends only to itself (no all-masked softmax row).
    group_of = torch.empty((len(row_members), width), dtype=torch.long)
    response_of = torch.full((len(row_members), width), -1, dtype=torch.long)
    predicting = torch.full((rows_out, response_width), -1, dtype=torch.long)
    layout = torch.full((rows_out, prompt_width + response_width), -1, dtype=torch.long)
    for row, members in enumerate(row_members):
        column = 0
        for b in members:
            prompt = prompts[b]
            start = column
            input_ids[row, column : column + len(prompt)] = torch.tensor(prompt, dtype=prompt_ids.dtype)
            position_ids[row, column : column + len(prompt)] = torch.arange(len(prompt))
            group_of[row, column : column + len(prompt)] = b
            column += len(prompt)
            last_prompt = row * width + column - 1
            prompt_flat = torch.arange(row * width + start, row * width + column)
            for g in range(sizes[b]):
                n = first[b] + g
                response = responses[n]
                length = len(response)
                layout[n, prompt_width - len(prompt) : prompt_width] = prompt_flat
                if length == 0:
                    continue
                input_ids[row, column : column + length] = torch.tensor(response, dtype=prompt_ids.dtype)
                position_ids[row, column : column + length] = len(prompt) + torch.arange(length)
                group_of[row, column : column + length] = b
                response_of[row, column : column + length] = g
                flat = torch.arange(row * width + column, row * width + column + length)
                # Token k of the response is predicted by the state of token k − 1, the first by the prompt's last.
                predicting[n, 0] = last_prompt
                predicting[n, 1:length] = flat[:-1]
                layout[n, prompt_width : prompt_width + length] = flat
                column += length
        group_of[row, column:] = -1 - torch.arange(width - column)  # padding: each its own group
    same_group = group_of.unsqueeze(-1) == group_of.unsqueeze(-2)  # (rows, query, key)
    key_is_prompt_or_same_response = (response_of.unsqueeze(-2) == -1) | (response_of.unsqueeze(-1) == response_of.unsqueeze(-2))
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    attention_mask = (same_group & key_is_prompt_or_same_response & causal).unsqueeze(1)
    return PackedGroups(input_ids, position_ids, attention_mask, predicting, layout)


def encode_packed(model: torch.nn.Module, packed: PackedGroups, device: torch.device) -> torch.Tensor:
    """(rows, T, d) last-layer states of a packing, from a Hugging Face causal LM's decoder.

    Transformers hands a custom 4-D mask to the attention kernel as it is: sdpa reads a boolean
    mask (True = attend), eager adds the mask to the scores, so it gets an additive one. Other
    kernels (flash attention) ignore it, and a sliding window is not applied to it: both refused."""
    config = model.config
    attention = getattr(config, "_attn_implementation", "sdpa")
    if attention not in ("sdpa", "eager"):  # flash-attention kernels ignore a 4-D mask: groups would see each other
        raise ValueError(f"the packed forward needs sdpa or eager attention (it passes a 4-D mask); this model uses {attention!r}")
    window = getattr(config, "sliding_window", None)
    uses_window = window and (getattr(config, "use_sliding_window", True) or "sliding_attention" in (getattr(config, "layer_types", None) or []))
    if uses_window and int(packed.position_ids.max()) + 1 > window:
        raise ValueError(f"a prompt + response of {int(packed.position_ids.max()) + 1} tokens exceeds the model's sliding window ({window}), which the packed mask does not apply")
    mask = packed.attention_mask.to(device)
    if attention == "eager":
        dtype = next(model.parameters()).dtype
        mask = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, torch.finfo(dtype).min)
    return model.get_decoder()(
        input_ids=packed.input_ids.to(device), attention_mask=mask, position_ids=packed.position_ids.to(device), use_cache=False
    ).last_hidden_state
