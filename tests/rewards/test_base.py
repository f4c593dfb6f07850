"""The protocol's plain sources: preference models, against an anchor, weighted sums, row columns."""

import math

import pytest
import torch

from prefrl.data.records import PromptRecord
from prefrl.errors import ConfigError
from prefrl.preference import GoldJudge
from prefrl.preference.base import PointwisePreferenceModel, PreferenceModel
from prefrl.rewards import AgainstAnchor, PreferenceModelReward, RewardRows, RewardSource, WeightedSum
from prefrl.rewards.base import as_float_rewards


class Length(PointwisePreferenceModel):
    def score(self, prompts, responses):
        return torch.tensor([float(len(r)) for r in responses])


class Longer(PreferenceModel):  # pairwise only
    def prob(self, prompts, a, b):
        return torch.tensor([0.9 if len(x) > len(y) else 0.1 for x, y in zip(a, b)])


class Fixed(RewardSource):
    def __init__(self, values):
        self.values = values

    def score(self, rows):
        return torch.tensor(self.values, dtype=torch.float32)


def test_rows_repeat_each_records_columns_and_anchor_over_its_k_samples():
    records = [PromptRecord("p0", reference="ref0", extra={"ground_truth": "7"}), PromptRecord("p1", extra={"source": "x"})]
    rows = RewardRows.from_records(records, ["a", "b", "c", "d"], group_size=2)
    assert rows.prompts == ["p0", "p0", "p1", "p1"]
    assert rows.columns == {"ground_truth": ["7", "7", None, None], "source": [None, None, "x", "x"]}
    assert rows.anchors == ["ref0", "ref0", None, None]


def test_a_weighted_sum_leaves_out_none_per_row_as_trl_does():
    total = WeightedSum([Fixed([1.0, math.nan, 2.0]), Fixed([10.0, 20.0, math.nan])], [0.5, 2.0])
    # row 0: 0.5·1 + 2·10; row 1: only the second source; row 2: only the first
    assert total.score(RewardRows(["p"] * 3, ["a", "b", "c"])).tolist() == [20.5, 40.0, 1.0]


def test_weights_must_match_the_sources():
    with pytest.raises(ConfigError, match="2 weights for 1"):
        WeightedSum([Fixed([1.0])], [1.0, 2.0])


def test_against_anchor_is_the_judges_win_probability_over_the_anchor():
    source = AgainstAnchor(PreferenceModelReward(Longer()))
    rows = RewardRows(["p", "p"], ["long answer", "a"], anchors=["mid", "mid"])
    assert source.score(rows).tolist() == pytest.approx([0.9, 0.1])
    with pytest.raises(ConfigError, match="anchor"):
        source.score(RewardRows(["p"], ["x"], anchors=[None]))


def test_gold_against_anchor_is_one_half_or_zero():
    source = AgainstAnchor(PreferenceModelReward(GoldJudge("arithmetic")))
    from prefrl.data.loaders import load_prompts

    record = load_prompts("arithmetic", "train", 0, 1)[0]
    rows = RewardRows([record.prompt] * 2, [record.reference, "no idea"], anchors=[record.reference] * 2)
    assert source.score(rows).tolist() == [0.5, 0.0]


def test_a_pairwise_model_has_no_score_but_fills_a_matrix():
    source = PreferenceModelReward(Longer())
    assert not source.is_pointwise
    with pytest.raises(ConfigError, match="pairwise"):
        source.score(RewardRows(["p"], ["a"]))
    matrix = source.preference_matrix(["p"], [["aa", "b"]])
    torch.testing.assert_close(matrix[0], torch.tensor([[0.5, 0.9], [0.1, 0.5]]))


def test_a_pointwise_sources_matrix_is_the_sigmoid_of_score_differences():
    matrix = PreferenceModelReward(Length()).preference_matrix(["p"], [["aaa", "a"]])
    assert matrix[0, 0, 1].item() == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())


def test_rewards_are_checked_for_length_and_type():
    assert as_float_rewards([1, None, 0.5], 3, "f").tolist()[::2] == [1.0, 0.5]
    with pytest.raises(ConfigError, match="f returned 2 rewards for 3"):
        as_float_rewards([1.0, 2.0], 3, "f")
    with pytest.raises(ConfigError, match="'x'"):
        as_float_rewards([1.0, "x"], 2, "f")
    with pytest.raises(ConfigError, match="returned float"):
        as_float_rewards(1.0, 2, "f")
