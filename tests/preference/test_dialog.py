import torch

from prefrl.data.templates import render_dialog
from prefrl.preference.dialog import DialogGPM, build_dialogs


def test_one_forward_gives_thought_logprobs_and_the_yes_probability():
    gpm = DialogGPM.from_base("tiny", n_thoughts=2, max_thought_tokens=5)
    prompts, responses = ["What is 2+2?", [{"role": "user", "content": "Say hi"}]], ["4", "hello"]
    prefixes, suffixes = gpm.dialog_parts(prompts, responses)
    thoughts = gpm.sample_thoughts(prefixes, 2, torch.Generator().manual_seed(0))
    dialogs = build_dialogs([p for p in prefixes for _ in range(2)], thoughts, [s for s in suffixes for _ in range(2)], gpm.tokenizer.pad_token_id)
    with torch.no_grad():
        output = gpm.scorer(dialogs)
    yes = gpm.tokenizer.convert_tokens_to_ids("Yes")
    # Independent computation: each dialog alone through the full LM, full log-softmax everywhere.
    for row in range(4):
        prefix, thought, suffix = prefixes[row // 2], thoughts[row], suffixes[row // 2]
        ids = torch.tensor([prefix + thought + suffix])
        with torch.no_grad():
            log_probs = torch.log_softmax(gpm.scorer.lm(ids).logits[0], dim=-1)
        expected_thought = sum(float(log_probs[len(prefix) + j - 1, t]) for j, t in enumerate(thought))
        torch.testing.assert_close(output.thought_logprobs[row], torch.tensor(expected_thought), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(output.answer_logprobs[row], log_probs[-1, yes], atol=1e-4, rtol=1e-4)


def test_dialog_template_has_both_turns_around_the_thought():
    gpm = DialogGPM.from_base("tiny")
    prefix, suffix = render_dialog(gpm.tokenizer, "Q", "R")
    assert prefix.endswith("<|im_start|>assistant\n") and "[Response]\nR" in prefix
    assert suffix.startswith("<|im_end|>") and "Is this response good? Answer Yes or No." in suffix
    assert suffix.endswith("<|im_start|>assistant\n")


def test_prob_is_the_ratio_of_mean_scores():
    gpm = DialogGPM.from_base("tiny", n_thoughts=3, max_thought_tokens=4)
    prompts, a, b = ["q"], ["good"], ["bad"]
    # prob scores both sides in one call (same thought-sampling stream as this call)
    score_a, score_b = gpm.score(prompts * 2, a + b)
    torch.testing.assert_close(gpm.prob(prompts, a, b), (score_a / (score_a + score_b)).reshape(1))
    assert 0 < float(score_a) < 1


def test_packing_over_uneven_groups_and_several_rows_changes_nothing():
    """Dialogs 1–3 (groups of 1 and 2 thoughts) packed into rows of ≤ 64 tokens give the outputs of
    the same dialogs scored together with the others (checked against single-dialog passes above)."""
    gpm = DialogGPM.from_base("tiny", n_thoughts=2, max_thought_tokens=5)
    prefixes, suffixes = gpm.dialog_parts(["What is 2+2?", "Say hi"], ["4", "hello"])
    thoughts = gpm.sample_thoughts(prefixes, 2, torch.Generator().manual_seed(1))
    dialogs = build_dialogs([p for p in prefixes for _ in range(2)], thoughts, [s for s in suffixes for _ in range(2)], gpm.tokenizer.pad_token_id)
    with torch.no_grad():
        whole = gpm.scorer(dialogs)
        gpm.scorer.max_row_tokens = 64
        part = gpm.scorer(dialogs.rows(torch.tensor([1, 2, 3])))
    torch.testing.assert_close(part.answer_logprobs, whole.answer_logprobs[1:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(part.thought_logprobs, whole.thought_logprobs[1:], atol=1e-5, rtol=1e-4)
    width = part.thought_token_logprobs.shape[1]
    torch.testing.assert_close(part.thought_token_logprobs, whole.thought_token_logprobs[1:, :width], atol=1e-5, rtol=1e-4)
