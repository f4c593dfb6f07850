"""R2M's motivating analysis (paper 002): do the policy's hidden states separate good from bad responses?

For N preference pairs of a task, the policy reads prompt + response; its hidden states are
mean-pooled over the response tokens at several layers. Per layer we report

    same label   mean cosine similarity between responses with the same label (chosen–chosen, rejected–rejected)
    cross label  mean cosine similarity between a chosen and a rejected response (of different prompts)
    gap          same − cross (> 0: the layer separates the labels)
    corr         Pearson correlation, over pairs, of (1 − cos(h⁺, h⁻)) with the reward difference r⁺ − r⁻
                 of a reward model (--reward-model), when one is given

    python benchmarks/hidden_state_similarity.py --pairs 200                    # SmolLM2, arithmetic
    python benchmarks/hidden_state_similarity.py --model tiny --pairs 8         # quick check
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("prefrl") is None:
    sys.path.insert(0, str(ROOT / "src"))


@torch.no_grad()
def pooled_states(model, tokenizer, pairs, side: str, layers: list[int], batch_size: int) -> torch.Tensor:
    """(len(layers), N, d) response-mean-pooled hidden states."""
    from prefrl.data.batching import tokenize_prompt_response
    from prefrl.models.policy import position_ids_from_mask
    from prefrl.rollout.rollout import build_sequences

    pooled = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        parts = [tokenize_prompt_response(tokenizer, p.prompt, getattr(p, side)) for p in chunk]
        ids, mask, response_mask, prompt_length = build_sequences([a for a, _ in parts], [b for _, b in parts], 1, tokenizer.pad_token_id)
        output = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask), output_hidden_states=True)
        weights = response_mask.float().unsqueeze(-1)
        pooled.append(torch.stack([(output.hidden_states[layer][:, prompt_length:] * weights).sum(1) / weights.sum(1) for layer in layers]))
    return torch.cat(pooled, dim=1)


def mean_offdiagonal(similarity: torch.Tensor) -> float:
    count = similarity.shape[0]
    return float((similarity.sum() - similarity.diagonal().sum()) / (count * (count - 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default="arithmetic")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--reward-model", default="", help="a BT run directory: correlate hidden-state distance with its reward difference")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    from prefrl.data.loaders import load_preference_pairs
    from prefrl.models.loading import load_causal_lm, load_tokenizer
    from prefrl.preference import load_preference_model

    started = time.perf_counter()
    tokenizer, model = load_tokenizer(args.model), load_causal_lm(args.model).eval()
    depth = model.config.num_hidden_layers
    layers = sorted({0, depth // 4, depth // 2, 3 * depth // 4, depth})
    pairs = load_preference_pairs(args.data, "test", 0, args.pairs)
    chosen = torch.nn.functional.normalize(pooled_states(model, tokenizer, pairs, "chosen", layers, args.batch_size), dim=-1)
    rejected = torch.nn.functional.normalize(pooled_states(model, tokenizer, pairs, "rejected", layers, args.batch_size), dim=-1)
    reward_gap = None
    if args.reward_model:
        rm = load_preference_model(args.reward_model)
        prompts = [p.prompt for p in pairs]
        reward_gap = rm.score(prompts, [p.chosen for p in pairs]) - rm.score(prompts, [p.rejected for p in pairs])

    print(f"model {args.model}, data {args.data}, {len(pairs)} pairs, {time.perf_counter() - started:.0f} s")
    print("| layer | same label | cross label | gap | corr(1 − cos(h⁺,h⁻), r⁺ − r⁻) |")
    print("|---:|---:|---:|---:|---:|")
    for index, layer in enumerate(layers):
        c, r = chosen[index], rejected[index]
        same = 0.5 * (mean_offdiagonal(c @ c.T) + mean_offdiagonal(r @ r.T))
        cross = mean_offdiagonal(c @ r.T)  # different prompts only, like the same-label means
        correlation = ""
        if reward_gap is not None:
            distance = 1 - (c * r).sum(-1)
            correlation = f"{float(torch.corrcoef(torch.stack([distance, reward_gap]))[0, 1]):.3f}"
        # The gap equals half the mean of (h⁺ᵢ − h⁻ᵢ)·(h⁺ⱼ − h⁻ⱼ) over prompts i ≠ j, tiny when a pair's two
        # responses differ in a few tokens, hence the scientific notation.
        print(f"| {layer} | {same:.4f} | {cross:.4f} | {same - cross:+.2e} | {correlation} |")


if __name__ == "__main__":
    main()
