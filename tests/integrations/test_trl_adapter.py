"""prefrl.integrations.trl: a preference model called the way TRL's trainers call `reward_funcs`."""

from __future__ import annotations

import math

import pytest
import torch

from prefrl.integrations.scoring import AnchorRequiredError
from prefrl.integrations.trl import reward_function
from prefrl.preference import GoldJudge
from prefrl.preference.bradley_terry import BradleyTerryModel
from prefrl.preference.pairwise import PairwiseJudge

PROMPTS = ["What is 2 + 2?", "Name a colour.", "q3"]
COMPLETIONS = ["4", "Blue, like the sky.", "an answer that is longer than the others"]


def trl_extras(count: int) -> dict:
    """What GRPOTrainer passes besides prompts and completions: token ids, dataset columns, trainer hooks."""
    return {
        "completion_ids": [[1, 2, 3]] * count,
        "ground_truth": ["x"] * count,
        "trainer_state": object(),
        "log_extra": lambda *args, **kwargs: None,
        "log_metric": lambda *args, **kwargs: None,
    }


def as_conversation(prompts, completions):
    return [[{"role": "user", "content": p}] for p in prompts], [[{"role": "assistant", "content": c}] for c in completions]


@pytest.fixture(scope="module")
def bt_model():
    return BradleyTerryModel.from_base("tiny")


def test_standard_format_rewards_are_the_models_scores(bt_model):
    reward = reward_function(bt_model, batch_size=2)
    rewards = reward(prompts=PROMPTS, completions=COMPLETIONS, **trl_extras(3))
    assert isinstance(rewards, list) and all(isinstance(value, float) for value in rewards)
    torch.testing.assert_close(torch.tensor(rewards), bt_model.score(PROMPTS, COMPLETIONS), atol=1e-5, rtol=1e-5)


def test_conversational_format_scores_the_same_texts_alike(bt_model):
    reward = reward_function(bt_model)
    prompts, completions = as_conversation(PROMPTS, COMPLETIONS)
    chat = reward(prompts=prompts, completions=completions, **trl_extras(3))
    torch.testing.assert_close(torch.tensor(chat), bt_model.score(prompts, completions), atol=1e-5, rtol=1e-5)
    # prefrl renders plain strings and chat messages through one template: the same numbers
    torch.testing.assert_close(torch.tensor(chat), torch.tensor(reward(PROMPTS, COMPLETIONS)), atol=1e-5, rtol=1e-5)


def test_run_directory_and_gold_judge_load_by_path(bt_model, tmp_path):
    bt_model.save(tmp_path / "model")
    by_path = reward_function(str(tmp_path))(PROMPTS, COMPLETIONS)
    torch.testing.assert_close(torch.tensor(by_path), bt_model.score(PROMPTS, COMPLETIONS), atol=1e-5, rtol=1e-5)
    gold = reward_function("gold:arithmetic")
    assert gold(["What is 17 + 25?"] * 2, ["The answer is 42.", "The answer is 32."], **trl_extras(2)) == [1.0, 0.0]
    assert gold.__name__ == "prefrl_gold"


def test_name_is_what_trl_logs_it_under(bt_model):
    assert reward_function(bt_model).__name__ == "prefrl_bradley_terry"
    assert reward_function(bt_model, name="helpfulness").__name__ == "helpfulness"
    get_callable_name = pytest.importorskip("trl.trainer.utils").get_callable_name  # TRL's own naming (bench extra)
    assert get_callable_name(reward_function(bt_model, name="helpfulness")) == "helpfulness"


def test_pairwise_model_scores_against_the_anchor_column():
    judge = PairwiseJudge.from_base("tiny")
    references = ["no", "Red.", "y"]
    reward = reward_function(judge)
    rewards = reward(PROMPTS, COMPLETIONS, reference=references, **trl_extras(3))
    torch.testing.assert_close(torch.tensor(rewards), judge.prob(PROMPTS, COMPLETIONS, references), atol=1e-5, rtol=1e-5)
    with pytest.raises(AnchorRequiredError, match="'reference' column"):
        reward(PROMPTS, COMPLETIONS, **trl_extras(3))
    by_other_column = reward_function(judge, anchor_column="baseline")(PROMPTS, COMPLETIONS, baseline=references)
    assert by_other_column == rewards
    with pytest.raises(ValueError, match="2 values for 3"):
        reward(PROMPTS, COMPLETIONS, reference=references[:2])


def test_pointwise_model_ignores_the_anchor_column(bt_model):
    reward = reward_function(bt_model)
    assert reward(PROMPTS, COMPLETIONS, reference=["a", "b", "c"]) == reward(PROMPTS, COMPLETIONS)


@pytest.mark.slow
def test_grpo_trainer_runs_with_the_adapter_as_its_reward(tmp_path, bt_model):
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from prefrl.data.tasks import get_task
    from prefrl.models.loading import load_tokenizer, resolve_model

    calls = []
    reward = reward_function(bt_model, batch_size=4)

    def counted(prompts, completions, **columns):
        calls.append((len(prompts), sorted(columns)))
        return reward(prompts, completions, **columns)

    counted.__name__ = reward.__name__
    records = get_task("arithmetic").generate(4, split="train", seed=0, fmt="conversational")
    dataset = Dataset.from_list([{"prompt": row["prompt"], "reference": row["chosen"]} for row in records])
    config = trl.GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2, max_completion_length=8, max_steps=2,
        learning_rate=1e-5, logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, bf16=False, disable_tqdm=True, seed=0,
    )
    policy = AutoModelForCausalLM.from_pretrained(resolve_model("tiny"), dtype=torch.float32)
    trainer = trl.GRPOTrainer(model=policy, reward_funcs=[counted], args=config, train_dataset=dataset, processing_class=load_tokenizer("tiny"))
    trainer.train()
    assert [count for count, _ in calls] == [4, 4] and "reference" in calls[0][1] and "trainer_state" in calls[0][1]
    logged = [entry[f"rewards/{reward.__name__}/mean"] for entry in trainer.state.log_history if f"rewards/{reward.__name__}/mean" in entry]
    assert len(logged) == 2 and all(math.isfinite(value) for value in logged)
