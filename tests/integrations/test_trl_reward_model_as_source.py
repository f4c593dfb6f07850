"""A reward model trained by TRL's RewardTrainer, saved with `trainer.save_model(dir)`, as the
`reward=` of a prefrl GRPO run (issue 13's "done when"). The reward model has its own tokenizer,
whose ids differ from the policy's: the source must score text, re-tokenised with the RM's tokenizer."""

from __future__ import annotations

import string

import pytest
import torch

from prefrl.cli import main
from prefrl.engine.metrics import read_metrics
from prefrl.rewards import HFRewardModel, RewardRows
from tests.rewards.recording import record_scores

pytestmark = pytest.mark.slow


def reward_model_tokenizer():
    """A character-level tokenizer with the tiny policy's ChatML template but other ids: specials
    last, printable characters in reverse order (so policy token ids mean other characters here)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from prefrl.models.tiny import CHAT_TEMPLATE

    specials = ["<pad>", "<|im_end|>", "<|im_start|>", "<unk>"]
    symbols = sorted(set(string.printable), reverse=True) + specials
    backend = Tokenizer(models.WordLevel(vocab={s: i for i, s in enumerate(symbols)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<pad>", unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@pytest.fixture(scope="module")
def trl_reward_dir(tmp_path_factory):
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForSequenceClassification

    tokenizer = reward_model_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
        num_labels=1, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForSequenceClassification(config)
    rows = [(f"What is {a} + {b}?", f"The answer is {a + b}.", f"The answer is {a + b + 1}.") for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]]
    dataset = Dataset.from_list([
        {"prompt": [{"role": "user", "content": p}], "chosen": [{"role": "assistant", "content": c}], "rejected": [{"role": "assistant", "content": r}]}
        for p, c, r in rows
    ])
    work = tmp_path_factory.mktemp("trl-rm")
    args = trl.RewardConfig(
        output_dir=str(work / "trainer"), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-2, bf16=False,
        use_cpu=True, report_to=[], save_strategy="no", logging_steps=1, dataloader_num_workers=0, seed=0,
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = trl.RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    assert any(not torch.equal(before[k], v.cpu()) for k, v in trainer.model.state_dict().items())  # it did train
    saved = work / "rm"
    trainer.save_model(str(saved))
    return saved


def independent_scores(directory, prompts, responses) -> list[float]:
    """The saved model's logit on each conversation alone, tokenised as TRL's RewardTrainer tokenises
    (apply_chat_template over prompt + response messages), loaded afresh with the Auto classes."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    scores = []
    with torch.no_grad():
        for prompt, response in zip(prompts, responses):
            ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": response}], tokenize=True, return_dict=True)["input_ids"]
            scores.append(model(input_ids=torch.tensor([ids])).logits[0, 0].item())
    return scores


def test_the_reward_models_tokenizer_is_not_the_policys(trl_reward_dir):
    from transformers import AutoTokenizer

    from prefrl.models.loading import load_tokenizer

    text = "What is 1 + 2?"
    assert AutoTokenizer.from_pretrained(trl_reward_dir)(text)["input_ids"] != load_tokenizer("tiny")(text)["input_ids"]


def test_grpo_with_a_trl_reward_model_scores_text_with_the_reward_models_own_tokenizer(tmp_path, trl_reward_dir, monkeypatch):
    scored = record_scores(monkeypatch, HFRewardModel)
    run = tmp_path / "grpo"
    argv = ["train", "grpo", "model=tiny", "data=arithmetic", f"reward={trl_reward_dir}", "max_steps=1", "batch_size=2", "num_generations=2",
            "max_new_tokens=6", "num_eval=0", f"output_dir={run}", "progress=false"]
    assert main(argv) == 0
    (rows, scores), = scored
    assert len(rows) == 4
    expected = independent_scores(trl_reward_dir, rows.prompts, rows.responses)
    torch.testing.assert_close(scores, torch.tensor(expected), atol=1e-5, rtol=1e-4)
    (step,) = [m for m in read_metrics(run) if "train/reward" in m]
    assert step["train/reward"] == pytest.approx(float(scores.mean()), abs=1e-6)


def test_the_source_scores_known_rows_as_the_saved_model_does(trl_reward_dir):
    """Rows with distinct, padded-in-a-batch lengths: the batched source equals one-by-one forwards;
    the policy's token ids fed to the reward model would give other scores."""
    from transformers import AutoModelForSequenceClassification

    from prefrl.models.loading import load_tokenizer

    prompts = [[{"role": "user", "content": "What is 1 + 2?"}], [{"role": "user", "content": "What is 10 + 20?"}], [{"role": "user", "content": "Hi"}]]
    responses = ["The answer is 3.", "30", "hello there, a much longer reply than the others"]
    source = HFRewardModel(str(trl_reward_dir))
    scores = source.score(RewardRows(prompts, responses))
    expected = torch.tensor(independent_scores(trl_reward_dir, prompts, responses))
    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-4)
    policy_tokenizer = load_tokenizer("tiny")
    model = AutoModelForSequenceClassification.from_pretrained(trl_reward_dir).eval()
    with torch.no_grad():
        ids = policy_tokenizer.apply_chat_template(prompts[0] + [{"role": "assistant", "content": responses[0]}], tokenize=True, return_dict=True)["input_ids"]
        wrong = model(input_ids=torch.tensor([ids]).clamp(max=model.config.vocab_size - 1)).logits[0, 0].item()
    assert abs(wrong - expected[0].item()) > 1e-4
