import torch

from prefrl.data.templates import render_dialog
from prefrl.preference.dialog import DialogGPM


def test_one_forward_gives_thought_logprobs_and_the_yes_probability():
    gpm = DialogGPM.from_base("tiny", n_thoughts=2, max_thought_tokens=5)
    prompts, responses = ["What is 2+2?", [{"role": "user", "content": "Say hi"}]], ["4", "hello"]
    prefixes, suffixes = gpm.dialog_parts(prompts, responses)
    thoughts = gpm.sample_thoughts(prefixes, 2, torch.Generator().manual_seed(0))
    dialogs = gpm.dialogs([p for p in prefixes for _ in range(2)], thoughts, [s for s in suffixes for _ in range(2)])
    with torch.no_grad():
        output = gpm.scorer(dialogs)
    yes = gpm.tokenizer.convert_tokens_to_ids("Yes")
    # Independent computation: each dialog alone through the full LM, full log-softmax everywhere.
    for row in range(4):
        prefix, thought, suffix = prefixes[row // 2], thoughts[row], suffixes[row // 2]
        written = thought[:-1] if thought and thought[-1] == suffix[0] else thought  # a stopped thought's <|im_end|> opens the suffix
        ids = torch.tensor([prefix + written + suffix])
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
    dialogs = gpm.dialogs([p for p in prefixes for _ in range(2)], thoughts, [s for s in suffixes for _ in range(2)])
    with torch.no_grad():
        whole = gpm.scorer(dialogs)
        gpm.scorer.max_row_tokens = 64
        part = gpm.scorer(dialogs.rows(torch.tensor([1, 2, 3])))
    torch.testing.assert_close(part.answer_logprobs, whole.answer_logprobs[1:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(part.thought_logprobs, whole.thought_logprobs[1:], atol=1e-5, rtol=1e-4)
    width = part.thought_token_logprobs.shape[1]
    torch.testing.assert_close(part.thought_token_logprobs, whole.thought_token_logprobs[1:, :width], atol=1e-5, rtol=1e-4)


def test_a_thought_that_stopped_is_scored_with_its_end_token():
    """A stopped thought's <|im_end|> is also the suffix's first token: the dialog holds it once, and
    log π(o) includes it (the decision to stop). A thought cut off at the length limit has no end token."""
    gpm = DialogGPM.from_base("tiny", n_thoughts=1, max_thought_tokens=5)
    (prefix,), (suffix,) = gpm.dialog_parts(["What is 2+2?"], ["4"])
    im_end = gpm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert suffix[0] == im_end
    words = gpm.tokenizer.encode("it is right", add_special_tokens=False)
    stopped, cut = words + [im_end], words
    dialogs = gpm.dialogs([prefix, prefix], [stopped, cut], [suffix, suffix])
    assert dialogs.thought_length.tolist() == [len(stopped), len(cut)]
    for row in range(2):  # both rows are the same text: the conversation with the thought written once
        assert dialogs.input_ids[row, : int(dialogs.attention_mask[row].sum())].tolist() == prefix + words + suffix
    with torch.no_grad():
        output = gpm.scorer(dialogs)
        log_probs = torch.log_softmax(gpm.scorer.lm(torch.tensor([prefix + words + suffix])).logits[0], dim=-1)
    written = [float(log_probs[len(prefix) + j - 1, t]) for j, t in enumerate(stopped)]
    torch.testing.assert_close(output.thought_logprobs, torch.tensor([sum(written), sum(written[:-1])]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(output.answer_logprobs[0], output.answer_logprobs[1])


def test_thought_logprobs_are_read_at_the_sampling_temperature():
    gpm = DialogGPM.from_base("tiny", n_thoughts=1, max_thought_tokens=4, temperature=0.5)
    prefixes, suffixes = gpm.dialog_parts(["q"], ["a"])
    thoughts = gpm.sample_thoughts(prefixes, 1, torch.Generator().manual_seed(0))
    dialogs = gpm.dialogs(prefixes, thoughts, suffixes)
    with torch.no_grad():
        output = gpm.scorer(dialogs)
        logits = gpm.scorer.lm(dialogs.input_ids).logits[0]
    start = len(prefixes[0])
    at_half = torch.log_softmax(logits / 0.5, dim=-1)
    expected = sum(float(at_half[start + j - 1, t]) for j, t in enumerate(thoughts[0]))
    torch.testing.assert_close(output.thought_logprobs[0], torch.tensor(expected), atol=1e-4, rtol=1e-4)
    yes = gpm.tokenizer.convert_tokens_to_ids("Yes")  # the answer is read at temperature 1
    torch.testing.assert_close(output.answer_logprobs[0], torch.log_softmax(logits[-1], dim=-1)[yes], atol=1e-5, rtol=1e-5)
