"""A pairwise judge that thinks before its verdict (the DWRL paper's "GRPO (pair)" baseline).

It reads [x, A, B], writes a short analysis and ends with "Verdict: A" or "Verdict: B". As a
preference model, P(A | x, a, b) is read from the logits of "A" and "B" right after "Verdict:"
(appended when the greedy analysis did not write it), and both orders are averaged:
P(a ≻ b) = ½ [P(A | x, a, b) + P(B | x, b, a)].
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import torch

from prefrl.data.batching import encode, pad_sequences
from prefrl.data.records import Text
from prefrl.data.templates import PAIRWISE_VERDICTS, VERDICT_MARK, render_prompt, thinking_judge_messages
from prefrl.data.records import PromptRecord
from prefrl.models.heads import last_token_index
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.preference.base import PreferenceModel, write_model_card
from prefrl.preference.pairwise import single_token_id
from prefrl.rollout.generation import generate_responses

KIND = "thinking-pairwise"
_VERDICT = re.compile(r"Verdict:\s*\**\s*([AB])\b")


def parse_verdict(text: str) -> str | None:
    """The last "Verdict: A|B" in a response, or None."""
    found = _VERDICT.findall(text)
    return found[-1] if found else None


class ThinkingJudge(PreferenceModel):
    kind = KIND

    def __init__(self, lm: Any, tokenizer: Any, max_new_tokens: int = 64, batch_size: int = 8):
        self.lm = lm
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        # BPE vocabularies hold " A" (space included) as one token: read it right after "Verdict:".
        # Character-level ones do not: then the prompt ends with "Verdict: " and the letter follows.
        spaced = [tokenizer(" " + v, add_special_tokens=False)["input_ids"] for v in PAIRWISE_VERDICTS]
        if all(len(ids) == 1 for ids in spaced):
            self.verdict_ids, self.verdict_lead = [ids[0] for ids in spaced], VERDICT_MARK
        else:
            self.verdict_ids, self.verdict_lead = [single_token_id(tokenizer, v) for v in PAIRWISE_VERDICTS], VERDICT_MARK + " "

    @classmethod
    def load(cls, directory: str | Path, dtype: str = "float32", **kwargs: Any) -> "ThinkingJudge":
        return cls(load_causal_lm(str(directory), dtype=dtype), load_tokenizer(str(directory)), **kwargs)

    def save(self, directory: str | Path) -> None:
        self.lm.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        write_model_card(directory, KIND)

    @torch.no_grad()
    def first_verdict_probs(self, prompts: Sequence[Text], firsts: Sequence[Text], seconds: Sequence[Text]) -> torch.Tensor:
        """(N,) P("A") after the judge's own greedy analysis of [x, first, second]."""
        records = [PromptRecord(thinking_judge_messages(p, a, b)) for p, a, b in zip(prompts, firsts, seconds)]
        analyses = generate_responses(self.lm, self.tokenizer, records, self.max_new_tokens, self.batch_size)
        sequences = []
        for record, analysis in zip(records, analyses):
            head = analysis.rsplit(VERDICT_MARK, 1)[0].rstrip() if VERDICT_MARK in analysis else analysis.rstrip()
            sequences.append(encode(self.tokenizer, render_prompt(self.tokenizer, record.prompt) + head + "\n" + self.verdict_lead))
        probs = []
        for start in range(0, len(sequences), self.batch_size):
            ids, mask = pad_sequences(sequences[start : start + self.batch_size], self.tokenizer.pad_token_id)
            hidden = self.lm.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
            last = hidden[torch.arange(len(ids)), last_token_index(mask)]
            logits = self.lm.get_output_embeddings()(last)[:, self.verdict_ids]
            probs.append(torch.softmax(logits.float(), -1)[:, 0])
        return torch.cat(probs)

    def order_probs(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> tuple[torch.Tensor, torch.Tensor]:
        """(P(A | x, a, b), P(B | x, b, a)), both (B,): a's probability when shown first and second,
        from one batch of both orders (evaluation reads position consistency from the two)."""
        count = len(prompts)
        first = self.first_verdict_probs(list(prompts) * 2, list(responses_a) + list(responses_b), list(responses_b) + list(responses_a))
        return first[:count], 1 - first[count:]

    def prob(self, prompts: Sequence[Text], responses_a: Sequence[Text], responses_b: Sequence[Text]) -> torch.Tensor:
        a_first, a_second = self.order_probs(prompts, responses_a, responses_b)
        return 0.5 * (a_first + a_second)
