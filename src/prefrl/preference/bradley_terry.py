"""Bradley–Terry reward model: r(x, y) from a scalar head; P(a ≻ b) = σ(r_a − r_b)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from prefrl.data.batching import encode, pad_sequences
from prefrl.data.records import Text
from prefrl.data.templates import render_conversation
from prefrl.models.heads import ScalarRewardModel
from prefrl.models.loading import load_sequence_classifier, load_tokenizer
from prefrl.preference.base import (
    MODEL_CARD,
    TRAINED_FORMAT_KEY,
    PointwisePreferenceModel,
    read_model_card,
    write_model_card,
)

KIND = "bradley-terry"


def distinct_pad_token(tokenizer: Any) -> None:
    """Make the pad token differ from the end-of-turn token.

    Chat models often pad with EOS. A reward read at the last token must see the final end-of-turn
    token, and `AutoModelForSequenceClassification` finds that token by comparing ids with the pad
    id, so the two must differ for the saved checkpoint to score like prefrl does.
    """
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return
    for candidate in ("<|endoftext|>", "<pad>", tokenizer.unk_token):
        if candidate and candidate != tokenizer.eos_token and candidate in tokenizer.get_vocab():
            tokenizer.pad_token = candidate
            return
    tokenizer.add_special_tokens({"pad_token": "<pad>"})


class BradleyTerryModel(PointwisePreferenceModel):
    kind = KIND

    def __init__(self, reward_model: ScalarRewardModel, tokenizer: Any, batch_size: int = 16, max_length: int = 2048):
        self.reward_model = reward_model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length

    @classmethod
    def from_base(cls, name: str, dtype: str = "float32", cache_dir: str | None = None, **kwargs: Any) -> "BradleyTerryModel":
        """A fresh reward model: a pretrained backbone (causal LM or classifier) and a new head."""
        tokenizer = load_tokenizer(name, cache_dir)
        distinct_pad_token(tokenizer)
        classifier = load_sequence_classifier(name, dtype=dtype, cache_dir=cache_dir, pad_token_id=tokenizer.pad_token_id)
        if classifier.get_input_embeddings().num_embeddings < len(tokenizer):
            classifier.resize_token_embeddings(len(tokenizer))
        return cls(ScalarRewardModel(classifier), tokenizer, **kwargs)

    @classmethod
    def load(cls, directory: str | Path, dtype: str = "float32", **kwargs: Any) -> "BradleyTerryModel":
        model = cls.from_base(str(directory), dtype=dtype, **kwargs)
        card = read_model_card(directory) if Path(directory, MODEL_CARD).is_file() else {}
        model.trained_format = card.get(TRAINED_FORMAT_KEY)
        return model

    def save(self, directory: str | Path) -> None:
        """A normal HF checkpoint (AutoModelForSequenceClassification loads it) plus the model card."""
        classifier = self.reward_model.classifier
        classifier.config.pad_token_id = self.tokenizer.pad_token_id
        classifier.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        write_model_card(directory, KIND, **self.card_details())

    def encode(self, prompts: Sequence[Text], responses: Sequence[Text]) -> list[list[int]]:
        return [encode(self.tokenizer, render_conversation(self.tokenizer, p, r))[-self.max_length :] for p, r in zip(prompts, responses)]

    @torch.no_grad()
    def score(self, prompts: Sequence[Text], responses: Sequence[Text]) -> torch.Tensor:
        self.check_format(prompts)
        sequences = self.encode(prompts, responses)
        # Longest first, in batches of similar length, so little compute goes to padding.
        order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
        device = next(self.reward_model.parameters()).device
        scores = torch.empty(len(sequences))
        was_training = self.reward_model.training
        self.reward_model.eval()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            ids, mask = pad_sequences([sequences[i] for i in chunk], self.tokenizer.pad_token_id)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.autocast_bf16):
                scores[chunk] = self.reward_model(ids.to(device), mask.to(device)).float().cpu()
        self.reward_model.train(was_training)
        return scores
