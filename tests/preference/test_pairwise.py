import torch

from prefrl.data.templates import render_pairwise_judge
from prefrl.preference.pairwise import PairwiseJudge


def test_prob_is_the_two_order_average_of_the_verdict_softmax():
    judge = PairwiseJudge.from_base("tiny")
    prompt, a, b = [{"role": "user", "content": "What is 2 + 2?"}], "4", "5"
    # Independent computation: the full LM forward, softmax over the A/B logits at the last position.
    def p_first(first, second):
        ids = judge.tokenizer(render_pairwise_judge(judge.tokenizer, prompt, first, second), add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits = judge.model.lm(ids).logits[0, -1]
        verdicts = [judge.tokenizer.convert_tokens_to_ids(v) for v in ("A", "B")]
        return torch.softmax(logits[verdicts], -1)[0]

    expected = 0.5 * (p_first(a, b) + (1 - p_first(b, a)))
    torch.testing.assert_close(judge.prob([prompt], [a], [b])[0], expected, atol=1e-5, rtol=1e-5)
    # swapping the arguments gives the complement: the two-order average is symmetric
    torch.testing.assert_close(judge.prob([prompt], [b], [a])[0], 1 - expected, atol=1e-5, rtol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    judge = PairwiseJudge.from_base("tiny")
    judge.save(tmp_path)
    loaded = PairwiseJudge.load(tmp_path)
    args = (["q"], ["a"], ["b"])
    torch.testing.assert_close(loaded.prob(*args), judge.prob(*args))
