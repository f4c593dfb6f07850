"""What the policy recipes (GRPO, RLOO, PPO, pairwise PPO, SPPO, DPO, GRPO-pair) share, next to them.

What is here is set-up and bookkeeping, not algorithm: the common config keys, loading the policy
(optionally with LoRA), its frozen reference, the prompt stream, the reward sources (the
`reward=` source and, for built-in tasks, the gold judge), the per-step sampling generator, the
held-out evaluation and saving the final policy. Each recipe's file keeps its algorithm.
"""

from __future__ import annotations

import copy
import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from prefrl.config import CheckpointSection, ConfigSection, EvaluationSection, OptimSection, RunSection, option
from prefrl.data.loaders import load_prompts
from prefrl.data.records import PromptRecord
from prefrl.data.tasks import is_task
from prefrl.engine.engine import Engine
from prefrl.engine.supervised import GlobalBatchSampler
from prefrl.engine.threads import default_bf16
from prefrl.errors import ConfigError
from prefrl.eval.policy import held_out_report, prompt_kind
from prefrl.models.loading import load_causal_lm, load_tokenizer
from prefrl.models.policy import PolicyModel
from prefrl.preference import GoldJudge
from prefrl.preference.base import write_model_card
from prefrl.rewards import RewardRows, RewardSource, RewardSourceSection, build_reward_source
from prefrl.rollout import HFGenerationBackend, Rollout, SamplingParams, eos_token_ids, generate_responses
from prefrl.utils import publish_directory, write_json


@dataclass
class LoRASection(ConfigSection):
    """LoRA adapters on the policy (peft); off at lora_r=0."""

    lora_r: int = option(0, "LoRA rank for the policy through peft (0: full fine-tuning).")
    lora_alpha: int = option(16, "LoRA alpha.")
    lora_dropout: float = option(0.0, "LoRA dropout.")
    lora_target_modules: str = option("all-linear", "LoRA target modules (peft syntax, comma-separated or all-linear).")

    def validate(self) -> None:
        super().validate()
        if self.lora_r < 0:
            raise ConfigError(f"config key 'lora_r' must be 0 or more, got {self.lora_r}")


@dataclass
class GenerationSection(ConfigSection):
    """How long the policy's answers may be (sampled in training, greedy in evaluation)."""

    max_new_tokens: int = option(64, "Longest sampled response (64 tokens fit every `constraints` kind, 40 words included).")

    def validate(self) -> None:
        super().validate()
        if self.max_new_tokens < 1:
            raise ConfigError(f"config key 'max_new_tokens' must be at least 1, got {self.max_new_tokens}")


@dataclass
class SamplingSection(ConfigSection):
    """Sampling K responses per prompt and taking their log-probs."""

    num_generations: int = option(8, "Samples per prompt (K).")
    temperature: float = option(1.0, "Sampling temperature (log-probs are taken at the same temperature).")
    top_p: float = option(1.0, "Nucleus sampling mass.")
    forward_chunk_size: int = option(16, "Rows per no-grad forward when computing rollout log-probs.")

    def validate(self) -> None:
        super().validate()
        if self.num_generations < 1:
            raise ConfigError("config key 'num_generations' must be at least 1")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"config key 'top_p' must be in (0, 1], got {self.top_p}")
        if self.temperature <= 0:
            raise ConfigError(f"config key 'temperature' must be positive, got {self.temperature}")
        if self.forward_chunk_size < 1:
            raise ConfigError(f"config key 'forward_chunk_size' must be at least 1, got {self.forward_chunk_size}")


@dataclass
class ReferenceSection(ConfigSection):
    """The frozen reference policy and the KL to it."""

    kl_coef: float = option(0.0, "β: weight of the KL to the reference policy (0 skips the reference model, as TRL's default).")
    kl_estimator: str = option("k3", "KL estimator: k1, k2 or k3.")
    use_reference: str = option("auto", "Load a frozen reference policy: auto (iff kl_coef > 0), true (also at kl_coef=0, to log the KL), false.")

    def loads_reference(self) -> bool:
        if self.use_reference == "auto":
            return self.kl_coef > 0
        return self.use_reference == "true"

    def validate(self) -> None:
        super().validate()
        self.use_reference = str(self.use_reference).strip().lower()
        if self.use_reference not in ("auto", "true", "false"):
            raise ConfigError(f"config key 'use_reference' must be auto, true or false, got {self.use_reference!r}")
        if not (self.kl_coef >= 0 and math.isfinite(self.kl_coef)):
            raise ConfigError(f"config key 'kl_coef' must be 0 or a positive finite number, got {self.kl_coef}")
        if self.use_reference == "false" and self.kl_coef > 0:
            raise ConfigError(f"kl_coef={self.kl_coef} needs the reference model: use_reference=false contradicts it (set kl_coef=0 or use_reference=auto)")
        if self.kl_estimator not in ("k1", "k2", "k3"):
            raise ConfigError(f"config key 'kl_estimator' must be k1, k2 or k3, got {self.kl_estimator!r}")


@dataclass
class ClippingSection(ConfigSection):
    """PPO's clipped surrogate: passes over each rollout, the clip range, how token losses aggregate."""

    ppo_epochs: int = option(1, "Optimisation passes over each rollout.")
    clip_eps: float = option(0.2, "PPO clip ε (lower).")
    clip_eps_high: float = option(0.0, "PPO clip ε for ρ > 1 (DAPO's clip-higher); 0 uses clip_eps.")
    loss_aggregation: str = option("token-mean", "token-mean, sequence-mean or fixed-length-sum (Dr. GRPO).")

    def validate(self) -> None:
        super().validate()
        if self.ppo_epochs < 1:
            raise ConfigError(f"config key 'ppo_epochs' must be at least 1, got {self.ppo_epochs}")
        if self.loss_aggregation not in ("token-mean", "sequence-mean", "fixed-length-sum"):
            raise ConfigError(f"config key 'loss_aggregation' must be token-mean, sequence-mean or fixed-length-sum, got {self.loss_aggregation!r}")


@dataclass
class PeriodicEvaluationSection(ConfigSection):
    """Held-out evaluation during training, not only before and after."""

    eval_steps: int = option(0, "Evaluate the policy every N steps (0: only before and after training).")

    def validate(self) -> None:
        super().validate()
        if self.eval_steps < 0:
            raise ConfigError(f"config key 'eval_steps' must be 0 or more, got {self.eval_steps}")


@dataclass
class PolicyConfig(LoRASection, GenerationSection, EvaluationSection, CheckpointSection, OptimSection, RunSection):
    """The sections every recipe that trains a policy reads (DPO, SPPO and the online RL recipes).

    The defaults are tuned for the embedded default — SmolLM2-135M-Instruct on the built-in
    `constraints` task, 2 CPU cores — so that a run with no keys raises held-out gold accuracy
    significantly within 20 steps (docs/benchmarks.md, "Learning with the shipped defaults"). A larger
    model or a GPU usually wants a lower lr and more steps."""

    output_dir: str = option("runs/policy", "Run directory: resolved config, metrics.jsonl, checkpoints and the final policy.")
    max_steps: int = option(20, "Number of steps (one rollout and its updates each).")
    batch_size: int = option(8, "Prompts per step (global); each gets num_generations samples.")
    lr: float = option(4e-5, "Peak learning rate (AdamW).")
    warmup_ratio: float = option(0.0, "Fraction of the optimizer steps spent warming the learning rate up.")
    lr_scheduler: str = option("constant", "Decay after warm-up: cosine, linear or constant.")
    bf16: bool = option(default_bf16(), "bfloat16 autocast (weights and optimizer stay float32); default: on where the GPU or CPU has bf16 units ($PREFRL_DEFAULT_BF16=0|1 overrides).")
    num_eval: int = option(64, "Held-out prompts for the gold/proxy evaluation (0 disables it).")
    eval_batch_size: int = option(16, "Prompts per generation call in evaluation.")
    data_seed: int = option(0, "Seed of the built-in task generator (kept apart from `seed`).")


@dataclass
class OnlinePolicyConfig(PeriodicEvaluationSection, ClippingSection, ReferenceSection, SamplingSection, PolicyConfig):
    """The sections of the recipes that sample, score and take clipped updates (GRPO, RLOO, GRPO-pair,
    PPO, pairwise PPO)."""


class FrozenReference(PolicyModel):
    """The reference policy as the LoRA policy with its adapter switched off: no second copy."""

    def forward(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        with self.lm.disable_adapter():
            return super().forward(*args, **kwargs)


@dataclass
class PolicySetup:
    tokenizer: Any
    policy: PolicyModel  # trainable (wrapped by accelerate after `engine.prepare`)
    reference: PolicyModel | None
    train_prompts: list[PromptRecord]
    eval_prompts: list[PromptRecord]
    reward: RewardSource | None  # where the reward comes from (`reward=`): the proxy, or the gold judge
    gold: GoldJudge | None  # the task's gold judge, logged beside the proxy
    proxy_is_gold: bool = False  # the reward is the gold judge itself (then no separate proxy to watch)
    initial_answers: HeldOutAnswers | None = None  # the initial policy's held-out answers (the paired baseline)
    last_answers: HeldOutAnswers | None = None  # the latest evaluation's answers

    @property
    def lm(self) -> torch.nn.Module:
        return self.policy.lm


def load_policy(config: PolicyConfig, with_reference: bool) -> tuple[Any, PolicyModel, PolicyModel | None]:
    """Tokenizer, trainable policy (LoRA-wrapped at lora_r > 0) and, `with_reference`, its frozen reference."""
    tokenizer = load_tokenizer(config.model, config.cache_dir or None)
    lm = load_causal_lm(config.model, dtype=config.dtype, cache_dir=config.cache_dir or None)
    lm.config.use_cache = False  # training forwards; generation passes use_cache explicitly
    reference: PolicyModel | None = None
    if config.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        targets: Any = config.lora_target_modules
        if targets != "all-linear":
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        lm = get_peft_model(lm, LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets, task_type="CAUSAL_LM"))
        if with_reference:
            reference = FrozenReference(lm)
    elif with_reference:
        frozen = copy.deepcopy(lm).eval()
        frozen.requires_grad_(False)
        reference = PolicyModel(frozen).eval()
    return tokenizer, PolicyModel(lm), reference


def setup_policy(config: Any, pairwise: bool = False, with_reference: bool = False) -> PolicySetup:
    """Stage 1 of every policy recipe: prompts (validated), policy, reference, reward sources.

    `config` is a PolicyConfig with a RewardSourceSection (`reward=`); `pairwise=True` accepts a
    pairwise preference model (pairwise PPO's judge, SPPO's oracle) where the other recipes need a
    pointwise one; `with_reference` loads the frozen reference policy."""
    train_prompts = load_prompts(config.data, config.train_split, config.data_seed, config.num_train)
    eval_prompts = load_prompts(config.data, config.eval_split, config.data_seed, config.num_eval) if config.num_eval else []
    gold = GoldJudge(config.data) if is_task(config.data) else None
    proxy = build_reward_source(config, config.data)
    if proxy is not None:
        proxy.bf16 = config.bf16
    if proxy is not None and not pairwise and not proxy.is_pointwise:
        raise ConfigError(f"reward={config.reward!r} is a pairwise preference model; this recipe needs a pointwise one (a reward)")
    tokenizer, policy, reference = load_policy(config, with_reference)
    return PolicySetup(tokenizer, policy, reference, train_prompts, eval_prompts, proxy, gold, proxy_is_gold=config.reward_specs() in ([], ["gold"]))


class PromptStream:
    """The prompts of step s on this process: a reproducible permutation stream (see GlobalBatchSampler)."""

    def __init__(self, prompts: list[PromptRecord], config: RunSection, engine: Engine):
        self.prompts = prompts
        self.sampler = GlobalBatchSampler(len(prompts), config.batch_size, config.seed)
        self.rank, self.world = engine.accelerator.process_index, engine.accelerator.num_processes

    def for_step(self, step: int) -> list[PromptRecord]:
        (indices,) = self.sampler.micro_batches(step, self.rank, self.world, accumulation=1)
        return [self.prompts[i] for i in indices]


def step_generator(config: PolicyConfig, step: int, rank: int) -> torch.Generator:
    """Sampling randomness derived from (seed, step, process): a resumed run samples the same tokens."""
    return torch.Generator().manual_seed(config.seed * 1_000_003 + step * 7919 + rank)


def sampling_params(config: OnlinePolicyConfig) -> SamplingParams:
    return SamplingParams(num_samples=config.num_generations, max_new_tokens=config.max_new_tokens, temperature=config.temperature, top_p=config.top_p)


def make_backend(lm: torch.nn.Module, tokenizer: Any, bf16: bool = False) -> HFGenerationBackend:
    return HFGenerationBackend(lm, eos_token_ids(tokenizer), tokenizer.pad_token_id, autocast_bf16=bf16)


def loss_weight(config: OnlinePolicyConfig) -> Callable[[Rollout], float] | None:
    """How many units a micro-batch's loss averages over, for `Engine.optimizer_step`: its response
    tokens under token-mean (the step divides by the global token count, as TRL's dapo, so
    accumulation and processes do not change the objective); under sequence-mean and
    fixed-length-sum every micro-batch holds as many sequences (None: equal weights)."""
    if config.loss_aggregation == "token-mean":
        return lambda batch: float(batch.response_mask.sum())
    return None


def micro_batch_groups(num_rows: int, group_size: int, pieces: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Split whole groups (K consecutive rows) into `pieces` equal micro-batches, groups shuffled:
    a micro-batch of whole groups can encode each prompt once for its K responses."""
    groups = micro_batch_rows(num_rows // group_size, pieces, generator)
    return [(g[:, None] * group_size + torch.arange(group_size)).reshape(-1) for g in groups]


def micro_batch_rows(num_rows: int, pieces: int, generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Split rows into `pieces` equal micro-batches (shuffled when a generator is given)."""
    if num_rows % pieces:
        raise ConfigError(f"{num_rows} rollout rows on this process cannot be split into {pieces} equal micro-batches")
    order = torch.randperm(num_rows, generator=generator) if generator is not None else torch.arange(num_rows)
    return list(order.view(pieces, -1))




def gold_rewards(setup: PolicySetup, rollout: Rollout) -> torch.Tensor | None:
    """The task's gold judge on every row (watched next to the proxy, never learned from); None without one."""
    return setup.gold.score(rollout.row_prompts, rollout.responses).float() if setup.gold is not None else None


INITIAL_ANSWERS_FILE = "eval_initial.json"  # the initial policy's held-out answers, kept for resume
ANSWERS_FILE = "eval_answers.jsonl"  # initial and final answers side by side, to read
# Every periodic evaluation's answers, one line per evaluation: a run's intermediate policies can be paired
# with the initial one (or with another run's at the same step) prompt by prompt after the run.
STEP_ANSWERS_FILE = "eval_answers_by_step.jsonl"


@dataclass
class HeldOutAnswers:
    """One policy's greedy answers to the held-out prompts, their token lengths and gold scores."""

    responses: list[str]
    lengths: list[int]
    gold_scores: list[float] | None


def answer_held_out(setup: PolicySetup, config: PolicyConfig, lm: torch.nn.Module) -> HeldOutAnswers:
    responses = generate_responses(lm, setup.tokenizer, setup.eval_prompts, config.max_new_tokens, config.eval_batch_size, bf16=config.bf16)
    lengths = [len(setup.tokenizer(r, add_special_tokens=False)["input_ids"]) for r in responses]
    gold = setup.gold.score([p.prompt for p in setup.eval_prompts], responses).tolist() if setup.gold is not None else None
    return HeldOutAnswers(responses, lengths, gold)


def evaluate_policy(setup: PolicySetup, config: PolicyConfig, lm: torch.nn.Module) -> dict[str, float]:
    """Greedy answers to the held-out prompts: gold accuracy overall and per kind, the paired
    comparison with the initial policy's answers (once those exist), length, repetitiveness and
    the proxy's reward."""
    if not setup.eval_prompts:
        return {}
    started = time.perf_counter()
    answers = answer_held_out(setup, config, lm)
    setup.last_answers = answers
    baseline = setup.initial_answers.gold_scores if setup.initial_answers is not None else None
    report = held_out_report(setup.eval_prompts, answers.responses, answers.lengths, answers.gold_scores, baseline)
    metrics = {f"eval/{k}": v for k, v in report.items()}
    if setup.reward is not None and not setup.proxy_is_gold and setup.reward.is_pointwise and not setup.reward.reads_policy_hidden:
        metrics["eval/proxy_reward"] = float(setup.reward.score(RewardRows.from_records(setup.eval_prompts, answers.responses)).nanmean())
    metrics["eval/seconds"] = time.perf_counter() - started
    return metrics


def evaluate_initial_policy(engine: Engine, setup: PolicySetup, config: PolicyConfig) -> dict[str, float]:
    """The initial policy's held-out evaluation (a fresh run) or its answers read back (a resumed
    one): the baseline every later evaluation is paired with."""
    path = Path(config.output_dir) / INITIAL_ANSWERS_FILE
    if not setup.eval_prompts or not engine.is_main:
        return {}
    if engine.step > 0 and path.is_file():
        setup.initial_answers = HeldOutAnswers(**json.loads(path.read_text()))
        return {}
    metrics = evaluate_policy(setup, config, setup.lm)
    setup.initial_answers = setup.last_answers
    write_json(path, asdict(setup.initial_answers))
    return metrics


def write_answers(setup: PolicySetup, config: PolicyConfig) -> None:
    """The held-out prompts with the initial and final answers and their gold scores (jsonl)."""
    if setup.initial_answers is None or setup.last_answers is None:
        return
    initial, final = setup.initial_answers, setup.last_answers
    with (Path(config.output_dir) / ANSWERS_FILE).open("w") as handle:
        for i, record in enumerate(setup.eval_prompts):
            row = {"prompt": record.prompt, "kind": prompt_kind(record), "initial": initial.responses[i], "final": final.responses[i]}
            if initial.gold_scores is not None and final.gold_scores is not None:
                row.update({"initial_gold": initial.gold_scores[i], "final_gold": final.gold_scores[i]})
            handle.write(json.dumps(row) + "\n")


def append_step_answers(setup: PolicySetup, config: PolicyConfig, step: int) -> None:
    """One line of STEP_ANSWERS_FILE: the step and the policy's held-out answers there (the prompts are
    those of ANSWERS_FILE, in the same order). A resumed run may repeat a step: the last line wins."""
    if setup.last_answers is None:
        return
    with (Path(config.output_dir) / STEP_ANSWERS_FILE).open("a") as handle:
        handle.write(json.dumps({"step": step, **asdict(setup.last_answers)}) + "\n")


def save_policy(engine: Engine, setup: PolicySetup, directory: Path, kind: str = "policy") -> None:
    """The final policy as a plain Hugging Face causal-LM checkpoint (LoRA merged in)."""
    lm = engine.unwrap(engine.model).lm if hasattr(engine.unwrap(engine.model), "lm") else setup.lm

    def build(staging: Path) -> None:
        model = lm
        if hasattr(model, "merge_and_unload"):
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(staging)
        setup.tokenizer.save_pretrained(staging)
        write_model_card(staging, kind)

    if engine.is_main:
        publish_directory(directory, build)
    engine.accelerator.wait_for_everyone()


@contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - started


def start_policy_run(engine: Engine, setup: PolicySetup, config: PolicyConfig) -> dict[str, Any]:
    """The run's result dict, with the held-out evaluation of the initial policy (fresh runs; a
    resumed run reads the initial answers back)."""
    result: dict[str, Any] = {"output_dir": config.output_dir}
    before = evaluate_initial_policy(engine, setup, config)
    if before:
        result["eval_before"] = before
        engine.log(before, step=0)
    return result


def end_policy_step(
    engine: Engine, setup: PolicySetup, config: OnlinePolicyConfig, metrics: dict[str, Any], bar: Any, progress_keys: tuple[str, ...],
    checkpoint_state: dict[str, Any] | None = None,
) -> None:
    """After `engine.end_step()`: periodic evaluation, then `Engine.close_step` (metrics, progress, checkpoint)."""
    if config.eval_steps and engine.step % config.eval_steps == 0 and engine.step < engine.total_steps and engine.is_main:
        metrics.update(evaluate_policy(setup, config, setup.lm))
        append_step_answers(setup, config, engine.step)
    engine.close_step(metrics, bar, progress_keys, checkpoint_state)


def finish_policy_run(
    engine: Engine, setup: PolicySetup, config: PolicyConfig, result: dict[str, Any], kind: str = "policy",
    final_evaluation: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Save the final policy to <run>/model and evaluate it on the held-out prompts.

    `final_evaluation`: the final policy's held-out metrics when the recipe has already computed and
    logged them (SPPO evaluates every iteration's policy, the last of which is the final one)."""
    save_policy(engine, setup, Path(config.output_dir) / "model", kind=kind)
    if engine.is_main:
        if final_evaluation is None:
            final_evaluation = evaluate_policy(setup, config, setup.lm)
            engine.log(final_evaluation)
        result["eval_after"] = final_evaluation
        write_answers(setup, config)
    result["steps"] = engine.step
    engine.finish()
    return result


def sample_step(engine: Engine, setup: PolicySetup, config: OnlinePolicyConfig, stream: PromptStream, backend: Any, generator: torch.Generator, **options: Any) -> Rollout:
    """This step's prompts, sampled with the step's generator (old/reference log-probs as `options` ask)."""
    from prefrl.rollout import collect_rollout

    return collect_rollout(
        setup.policy, backend, setup.tokenizer, stream.for_step(engine.step), sampling_params(config), generator,
        reference=setup.reference, forward_chunk_size=config.forward_chunk_size, **options,
    )
