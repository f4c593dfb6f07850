import json

import torch

from prefrl.data.templates import render_pairwise_judge
from prefrl.data.records import PreferencePair
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


def verdict_gap(judge, prompt, first, second):
    """Independent computation: logit_A − logit_B of the full LM at the judge prompt's last token."""
    ids = judge.tokenizer(render_pairwise_judge(judge.tokenizer, prompt, first, second), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = judge.model.lm(ids).logits[0, -1]
    a, b = (judge.tokenizer.convert_tokens_to_ids(v) for v in ("A", "B"))
    return float(logits[a] - logits[b])


PAIRS = [PreferencePair("What is 2 + 2?", "4", "5"), PreferencePair("Name a colour.", "Blue.", "Seven."), PreferencePair("Say hi.", "Hi!", "No.")]


def test_position_calibration_takes_the_mean_two_order_gap_off_every_verdict():
    judge = PairwiseJudge.from_base("tiny")
    gaps = [verdict_gap(judge, p.prompt, p.chosen, p.rejected) for p in PAIRS] + [verdict_gap(judge, p.prompt, p.rejected, p.chosen) for p in PAIRS]
    expected = sum(gaps) / len(gaps)
    assert abs(judge.calibrate_position(PAIRS) - expected) < 1e-4
    # every verdict moves by −c: P(A | x, a, b) = σ(g(a, b) − c), and over the calibration pairs the gaps now average 0
    p = PAIRS[0]
    a_first, a_second = judge.order_probs([p.prompt], [p.chosen], [p.rejected])
    torch.testing.assert_close(a_first[0], torch.sigmoid(torch.tensor(gaps[0] - expected)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a_second[0], 1 - torch.sigmoid(torch.tensor(gaps[3] - expected)), atol=1e-5, rtol=1e-5)
    sequences = [judge.encode(q.prompt, q.chosen, q.rejected) for q in PAIRS] + [judge.encode(q.prompt, q.rejected, q.chosen) for q in PAIRS]
    assert abs(float(judge.verdict_gaps(sequences).mean())) < 1e-4
    # calibrating again measures from the raw judge, not from the calibrated one
    assert abs(judge.calibrate_position(PAIRS) - expected) < 1e-4


def test_the_position_offset_survives_save_and_load_and_old_judges_load_without_one(tmp_path):
    judge = PairwiseJudge.from_base("tiny")
    offset = judge.calibrate_position(PAIRS)
    judge.save(tmp_path / "new")
    loaded = PairwiseJudge.load(tmp_path / "new")
    assert abs(float(loaded.model.position_offset) - offset) < 1e-6
    args = (["q"], ["a"], ["b"])
    torch.testing.assert_close(loaded.order_probs(*args), judge.order_probs(*args))
    card = tmp_path / "new" / "prefrl_model.json"
    # a card written before calibration existed has no offset
    card.write_text(json.dumps({k: v for k, v in json.loads(card.read_text()).items() if k != "position_offset"}))
    assert float(PairwiseJudge.load(tmp_path / "new").model.position_offset) == 0.0
