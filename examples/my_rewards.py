"""Example reward functions with TRL's `reward_funcs` signature, for `reward=examples/my_rewards.py:NAME`.

    prefrl train grpo reward=examples/my_rewards.py:fmt_reward,gold reward_weights=0.5,1

Each gets the prompts, the completions (strings; for chat prompts, [{"role": "assistant",
"content": ...}]) and every extra dataset column as a keyword, one entry per completion, and returns
one float per completion (None: no opinion on that row).
"""

import re


def completion_text(completion):
    return completion if isinstance(completion, str) else completion[-1]["content"]


def fmt_reward(prompts, completions, **columns):
    """1 for a short answer that is a single line ending in a number, 0.5 for a single line, else 0."""
    rewards = []
    for completion in completions:
        text = completion_text(completion).strip()
        one_line = bool(text) and "\n" not in text
        rewards.append(1.0 if one_line and re.search(r"-?\d+\.?\s*$", text) else 0.5 if one_line else 0.0)
    return rewards


def exact_match(prompts, completions, ground_truth=None, **columns):
    """1 when the completion contains the row's `ground_truth` column, None for rows without one."""
    if ground_truth is None:
        return [None] * len(completions)
    return [None if truth is None else float(str(truth) in completion_text(c)) for c, truth in zip(completions, ground_truth)]
