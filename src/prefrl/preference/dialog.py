"""Dialog generative preference model (DWRL, paper 000).

Turn 1 asks the model to critique y for x; it writes a thought o. Turn 2 asks "Is this response
good? Answer Yes or No."; the score is π(Yes | x, y, o), read from the logits at the answer position.
One forward pass over [prefix, o, suffix] gives both log π(o | x, y) (the thought tokens) and
π(Yes | x, y, o) (the last position) — never two passes.

    score(x, y) = p̂(x, y) = (1/n) Σᵢ π(Yes | x, y, oᵢ),  oᵢ ~ π(· | x, y)
    prob(x, a, b) = p̂_a / (p̂_a + p̂_b)

A thought that ended by itself includes its end token: log π(o | x, y) must carry the decision to stop,
or the thought step could never learn how long a thought should be. With a chat template that token is
the `<|im_end|>` that also opens the suffix, so the two share one position in the dialog.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from prefrl.data.batching import encode, left_pad, pad_sequences
from prefrl.data.records import Text
from prefrl.data.templates import DIALOG_ANSWER, render_dialog
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.models.packing import PackedGroups, encode_packed, pack_groups
from prefrl.models.policy import token_logprobs_from_logits
from prefrl.preference.base import PointwisePreferenceModel, write_model_card
from prefrl.preference.pairwise import single_token_id
from prefrl.rollout.generation import HFGenerationBackend, SamplingParams, eos_token_ids

KIND = "dialog-gpm"


@dataclass
class Dialogs:
    """N dialogs [prefix | thought | suffix], right-padded. Row i's thought occupies positions
    thought_start[i] … thought_start[i] + thought_length[i] − 1 (its end token included when it ended
    by itself; that may be the suffix's first token); its answer position is the last token."""

    input_ids: torch.Tensor  # (N, L)
    attention_mask: torch.Tensor  # (N, L)
    thought_start: torch.Tensor  # (N,)
    thought_length: torch.Tensor  # (N,)

    def rows(self, index: torch.Tensor) -> "Dialogs":
        return Dialogs(self.input_ids[index], self.attention_mask[index], self.thought_start[index], self.thought_length[index])

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())


def build_dialogs(
    prefixes: Sequence[list[int]], thoughts: Sequence[list[int]], suffixes: Sequence[list[int]], pad_token_id: int, stop_token_ids: Sequence[int] = ()
) -> Dialogs:
    """Thoughts as sampled, their end token (one of `stop_token_ids`) included when they stopped by
    themselves. When the suffix opens with that same token (a chat template's end of turn), the two
    are one token of the dialog, so the text is exactly the conversation and the token is still scored."""
    stops = set(stop_token_ids)
    sequences = [
        p + (t[:-1] if t and s and t[-1] in stops and t[-1] == s[0] else t) + s for p, t, s in zip(prefixes, thoughts, suffixes)
    ]
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
    return Dialogs(ids, mask, torch.tensor([len(p) for p in prefixes]), torch.tensor([len(t) for t in thoughts]))


@dataclass
class DialogOutput:
    thought_logprobs: torch.Tensor  # (N,) log π(o | x, y), summed over the thought's tokens
    answer_logprobs: torch.Tensor  # (N,) log π(Yes | x, y, o)
    thought_token_logprobs: torch.Tensor  # (N, T) per thought token (0 on padding)
    thought_mask: torch.Tensor  # (N, T)


class DialogScorer(nn.Module):
    """One forward over the dialogs; the output layer only at the thought and answer positions.

    Consecutive dialogs with the same prefix [x, y, critique request] — the n thoughts of one
    response — are packed behind one encoding of that prefix, and no padding is computed
    (`prefrl.models.packing`): with n = 4 the prefix, most of each dialog, is encoded once, not 4 times."""

    def __init__(self, lm: nn.Module, answer_token_id: int, max_row_tokens: int = 1024):
        super().__init__()
        self.lm = lm
        self.answer_token_id = answer_token_id
        self.max_row_tokens = max_row_tokens
        # Thoughts are sampled at this temperature (set by DialogGPM), so log π(o) is read at it too:
        # the PPO ratio and the score-function term must describe the distribution they came from.
        self.thought_temperature = 1.0

    def forward(self, dialogs: Dialogs) -> DialogOutput:
        ids = dialogs.input_ids
        device = ids.device
        packed, prefix_width, continuation_lengths = pack_dialogs(ids.cpu(), dialogs.attention_mask.cpu(), dialogs.thought_start.cpu(), self.max_row_tokens)
        hidden = encode_packed(self.lm, packed, device)
        hidden = hidden.reshape(-1, hidden.shape[-1])
        rows = torch.arange(ids.shape[0])
        width = max(int(dialogs.thought_length.max()), 1)
        offsets = torch.arange(width)
        thought_mask = offsets[None, :] < dialogs.thought_length.cpu()[:, None]
        token_positions = (dialogs.thought_start.cpu()[:, None] + offsets[None, :]).clamp(max=ids.shape[1] - 1)
        # Thought token k is predicted from the state before it (the prefix's last for k = 0); the
        # answer from the dialog's last real token.
        thought_states = packed.predicting[:, :width]  # the continuation starts with the thought, so it is at least this wide
        answer_states = packed.layout[rows, prefix_width + continuation_lengths - 1]
        gather = torch.cat([thought_states.clamp(min=0), answer_states[:, None]], dim=1).to(device)
        logits = self.lm.get_output_embeddings()(hidden[gather])
        thought_mask = thought_mask.to(device)
        thought_tokens = ids[rows[:, None].to(device), token_positions.to(device)]
        token_logprobs = token_logprobs_from_logits(logits[:, :-1] / self.thought_temperature, thought_tokens) * thought_mask
        answer = torch.log_softmax(logits[:, -1].float(), dim=-1)[:, self.answer_token_id]
        return DialogOutput(token_logprobs.sum(-1), answer, token_logprobs, thought_mask.long())


def pack_dialogs(input_ids: torch.Tensor, attention_mask: torch.Tensor, thought_start: torch.Tensor, max_row_tokens: int) -> tuple[PackedGroups, int, torch.Tensor]:
    """Right-padded dialogs -> (packing with one group per run of equal prefixes, the prefix width,
    each dialog's continuation length). The continuation (thought + answer request) is the
    packing's "response"; the prefix (everything before the thought) its prompt."""
    lengths = attention_mask.sum(-1)
    starts = thought_start.tolist()
    firsts = [0] + [
        i for i in range(1, len(starts)) if starts[i] != starts[i - 1] or not torch.equal(input_ids[i, : starts[i]], input_ids[i - 1, : starts[i - 1]])
    ]
    sizes = [b - a for a, b in zip(firsts, firsts[1:] + [len(starts)])]
    prefix_ids, prefix_mask = left_pad([input_ids[i, : starts[i]].tolist() for i in firsts], 0)
    continuation_lengths = lengths - thought_start
    continuation_ids, continuation_mask = pad_sequences([input_ids[i, starts[i] : int(lengths[i])].tolist() for i in range(len(starts))], 0)
    packed = pack_groups(prefix_ids, prefix_mask, continuation_ids, continuation_mask, max_row_tokens=max_row_tokens, group_sizes=sizes)
    return packed, prefix_ids.shape[1], continuation_lengths


class DialogGPM(PointwisePreferenceModel):
    """The dialog GPM. Thoughts come from the scorer itself, or, with `thought_model` set, from a
    frozen model that wrote them (the "BT on pre-filled thoughts" ablation scores held-out pairs with
    thoughts from the initial model, as it was trained)."""

    kind = KIND

    def __init__(
        self, scorer: DialogScorer, tokenizer: Any, n_thoughts: int = 4, max_thought_tokens: int = 64, temperature: float = 1.0,
        batch_size: int = 16, seed: int = 0, thought_model: str | None = None, dtype: str = "float32", cache_dir: str | None = None,
    ):
        self.scorer = scorer
        self.tokenizer = tokenizer
        self.n_thoughts = n_thoughts
        self.max_thought_tokens = max_thought_tokens
        self.temperature = temperature
        scorer.thought_temperature = temperature
        self.batch_size = batch_size
        self.seed = seed
        self.thought_model = thought_model
        self._dtype, self._cache_dir = dtype, cache_dir
        self.stop_token_ids = eos_token_ids(tokenizer)
        self._backend: HFGenerationBackend | None = None

    @property
    def backend(self) -> HFGenerationBackend:
        if self._backend is None:
            lm = self.scorer.lm if self.thought_model is None else load_causal_lm(self.thought_model, dtype=self._dtype, cache_dir=self._cache_dir).eval()
            self._backend = HFGenerationBackend(lm, self.stop_token_ids, self.tokenizer.pad_token_id)
        return self._backend

    def freeze_thoughts_to(self, model: str) -> None:
        """Sample thoughts from `model` (a name or path, recorded in the model card) from now on."""
        self.thought_model = str(Path(model).resolve()) if Path(model).exists() else model
        self._backend = None

    @classmethod
    def from_base(cls, name: str, dtype: str = "float32", cache_dir: str | None = None, **kwargs: Any) -> "DialogGPM":
        tokenizer = load_tokenizer(name, cache_dir)
        lm = load_causal_lm(name, dtype=dtype, cache_dir=cache_dir)
        return cls(DialogScorer(lm, single_token_id(tokenizer, DIALOG_ANSWER)), tokenizer, dtype=dtype, cache_dir=cache_dir, **kwargs)

    @classmethod
    def load(cls, directory: str | Path, dtype: str = "float32", n_thoughts: int | None = None, **kwargs: Any) -> "DialogGPM":
        import json

        card = json.loads((Path(directory) / "prefrl_model.json").read_text())
        settings = {key: card[key] for key in ("n_thoughts", "max_thought_tokens", "temperature", "thought_model") if key in card}
        if n_thoughts:
            settings["n_thoughts"] = n_thoughts
        return cls.from_base(str(directory), dtype=dtype, **{**settings, **kwargs})

    def save(self, directory: str | Path) -> None:
        self.scorer.lm.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        write_model_card(
            directory, KIND, n_thoughts=self.n_thoughts, max_thought_tokens=self.max_thought_tokens, temperature=self.temperature, thought_model=self.thought_model
        )

    def dialog_parts(self, prompts: Sequence[Text], responses: Sequence[Text]) -> tuple[list[list[int]], list[list[int]]]:
        parts = [render_dialog(self.tokenizer, p, r) for p, r in zip(prompts, responses)]
        return [encode(self.tokenizer, prefix) for prefix, _ in parts], [encode(self.tokenizer, suffix) for _, suffix in parts]

    def sample_thoughts(self, prefixes: Sequence[list[int]], n: int, generator: torch.Generator, greedy: bool = False) -> list[list[int]]:
        """n thoughts per prefix, group-contiguous; each prefix is encoded once and shared by its n
        samples through the KV cache. A thought that stopped by itself keeps its end token."""
        params = SamplingParams(num_samples=n, max_new_tokens=self.max_thought_tokens, temperature=self.temperature, greedy=greedy)
        return self.backend.generate(prefixes, params, generator)

    def dialogs(self, prefixes: Sequence[list[int]], thoughts: Sequence[list[int]], suffixes: Sequence[list[int]]) -> Dialogs:
        """One dialog per thought; prefixes and suffixes given per dialog."""
        return build_dialogs(prefixes, thoughts, suffixes, self.tokenizer.pad_token_id, self.stop_token_ids)

    @torch.no_grad()
    def score(self, prompts: Sequence[Text], responses: Sequence[Text]) -> torch.Tensor:
        """p̂(x, y): the mean Yes-probability over n sampled thoughts."""
        generator = torch.Generator().manual_seed(self.seed)
        scores = []
        was_training = self.scorer.training
        self.scorer.eval()
        for start in range(0, len(prompts), self.batch_size):
            prefixes, suffixes = self.dialog_parts(prompts[start : start + self.batch_size], responses[start : start + self.batch_size])
            thoughts = self.sample_thoughts(prefixes, self.n_thoughts, generator)
            n = self.n_thoughts
            dialogs = self.dialogs([p for p in prefixes for _ in range(n)], thoughts, [s for s in suffixes for _ in range(n)])
            device = next(self.scorer.parameters()).device
            answer = self.scorer(Dialogs(*(t.to(device) for t in (dialogs.input_ids, dialogs.attention_mask, dialogs.thought_start, dialogs.thought_length)))).answer_logprobs
            scores.append(answer.exp().view(-1, n).mean(-1).cpu())
        self.scorer.train(was_training)
        return torch.cat(scores)

    def prob(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> torch.Tensor:
        scores = self.score(list(prompts) * 2, list(responses_a) + list(responses_b))
        count = len(prompts)
        return scores[:count] / (scores[:count] + scores[count:]).clamp(min=1e-12)
