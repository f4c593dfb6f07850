"""One GRPO step end to end: prefrl against TRL's `GRPOTrainer`.

What is measured: whole GRPO optimizer steps — sample K completions for each of B prompts, score
them with the built-in `arithmetic` task's gold judge, group-relative advantages, one clipped-surrogate
update (forward, backward, gradient clipping, an AdamW step) — on the same model (SmolLM2-135M-Instruct
by default), the same prompts per step in the same order, B = 16 prompts × K = 4 completions × at most
64 new tokens, temperature 1, top-p 1, no top-k, ε = 0.2, group-std scaling, token-mean loss over the
whole batch (TRL's `dapo` aggregation), one update per rollout, lr 1e-6 constant, max grad-norm 1,
fp32, β (KL) = 0 by default (TRL's default: no reference model for either; --beta to change it),
no gradient checkpointing, no evaluation, no checkpoints, one process.

How: each framework runs in its own subprocess for W warm-up steps that are not counted, then S
measured steps. Sampling is random, so the completions (and their lengths) differ between the two:
compare tokens/s, and read s/step together with the mean response length.
- prefrl: `train_grpo`; per-step times are `<run>/metrics.jsonl`'s `perf/step_s` and its stages
  `perf/generation_s` (sampling, plus a no-grad π_old pass only when the config needs one — not
  with one update per rollout), `perf/reward_s`
  and `perf/training_s` (the update). "sampling" is the backend's `generate` alone, timed from
  outside.
- TRL: `GRPOTrainer` on a conversational dataset of the same prompts, ordered as prefrl's sampler
  takes them and read in order (`shuffle_dataset=False`); `per_device_train_batch_size=B·K` with
  no gradient accumulation, so one optimizer step generates for and trains on all B·K completions.
  A `TrainerCallback` times each step (on_step_begin → on_step_end); inside it "sampling" (=
  "generation": TRL needs no old-log-prob pass with one update per rollout) is the model's
  `generate`, "reward" the reward function, and "training" runs from the first forward with
  gradients on to the end of the step (forward, backward, clipping, optimizer step). What is left is
  "other" (tokenization, decoding, advantages, logging inside the step).
Generated tokens = response tokens including the closing end-of-turn token (prefrl's
`policy/response_length`, TRL's `completions/mean_length`, × B·K); training tokens = prompt +
response tokens of the update (non-pad); generation tokens/s = generated tokens / generation s,
training tokens/s = training tokens / training s. "loop s/step" and "other CPU load" as in
reward_throughput.py.

    python benchmarks/grpo_step.py                       # SmolLM2, B 16 × K 4 × 64 tokens, 1 + 2 steps
    python benchmarks/grpo_step.py --beta 0.04           # with a reference model (prefrl's default β)
    python benchmarks/grpo_step.py --model tiny --steps 1 --warmup 1   # quick check
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import import_prefrl, machine, run_child, version  # noqa: E402
DATA, SEED, LR = "arithmetic", 0, 1e-6  # 1e-6: the default learning rate of both GRPO configs


def plan(args: argparse.Namespace) -> dict:
    """The prompts, which of them each step takes (prefrl's prompt sampler), and their token counts."""
    import_prefrl()
    from prefrl.data.batching import encode
    from prefrl.data.loaders import load_prompts
    from prefrl.data.templates import render_prompt
    from prefrl.engine.supervised import GlobalBatchSampler
    from prefrl.models.loading import load_tokenizer

    total = args.warmup + args.steps
    prompts = load_prompts(DATA, "train", 0, total * args.batch_size)
    sampler = GlobalBatchSampler(len(prompts), args.batch_size, SEED)
    order = [sampler.indices_for_step(step) for step in range(total)]
    tokenizer = load_tokenizer(args.model)
    prompt_tokens = [len(encode(tokenizer, render_prompt(tokenizer, p.prompt))) for p in prompts]
    step_prompt_tokens = [args.num_generations * sum(prompt_tokens[i] for i in step) for step in order]
    return {"prompts": prompts, "order": order, "step_prompt_tokens": step_prompt_tokens}


def summarize(args: argparse.Namespace, steps: list[dict], loop_s: float | None, **extra) -> dict:
    """`steps`: per step step_s, generation_s, sampling_s, reward_s, training_s, generated, train_tokens."""
    measured = steps[args.warmup :]
    total = lambda key: sum(s[key] for s in measured)  # noqa: E731
    seconds, rows = total("step_s"), args.batch_size * args.num_generations
    return {
        "measured_steps": len(measured), "s_per_step": seconds / len(measured), "steps_per_s": len(measured) / seconds,
        **{f"{k}_s_per_step": total(f"{k}_s") / len(measured) for k in ("generation", "sampling", "reward", "training")},
        "other_s_per_step": (seconds - total("generation_s") - total("reward_s") - total("training_s")) / len(measured),
        "generated_tokens": total("generated"), "mean_response_length": total("generated") / (rows * len(measured)),
        "generation_tokens_per_s": total("generated") / total("generation_s"),
        "sampling_tokens_per_s": total("generated") / total("sampling_s"),
        "training_tokens": total("train_tokens"), "training_tokens_per_s": total("train_tokens") / total("training_s"),
        "loop_s_per_step": None if loop_s is None else loop_s / args.steps,
        "steps": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in s.items()} for s in steps],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }


def run_prefrl(args: argparse.Namespace) -> dict:
    import_prefrl()
    from prefrl.algorithms.grpo import GRPOConfig, train_grpo
    from prefrl.engine.metrics import read_metrics
    from prefrl.rollout import HFGenerationBackend

    data = plan(args)
    sampling_s: list[float] = []
    generate = HFGenerationBackend.generate

    def timed_generate(self, *a, **k):  # measurement only: the backend's own sampling, nothing changed
        started = time.perf_counter()
        try:
            return generate(self, *a, **k)
        finally:
            sampling_s.append(time.perf_counter() - started)

    HFGenerationBackend.generate = timed_generate
    rows_per_step = args.batch_size * args.num_generations
    with tempfile.TemporaryDirectory(prefix="bench-prefrl-") as run_dir:
        config = GRPOConfig(
            model=args.model, data=DATA, data_seed=0, seed=SEED, max_steps=args.warmup + args.steps, batch_size=args.batch_size,
            num_generations=args.num_generations, max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0,
            kl_coef=args.beta, clip_eps=0.2, scale_rewards="group", loss_aggregation="token-mean", ppo_epochs=1, lr=LR,
            lr_scheduler="constant", warmup_ratio=0.0, max_grad_norm=1.0, num_train=len(data["prompts"]), num_eval=0,
            eval_steps=0, output_dir=run_dir, progress=False, logging_steps=1, save_steps=0,
        )
        train_grpo(config)
        rows = [r for r in read_metrics(run_dir) if "perf/step_s" in r]
    steps = []
    for index, r in enumerate(rows):
        generated = round(r["policy/response_length"] * rows_per_step)
        steps.append({
            "step_s": r["perf/step_s"], "generation_s": r["perf/generation_s"], "sampling_s": sampling_s[index],
            "reward_s": r["perf/reward_s"], "training_s": r["perf/training_s"], "generated": generated,
            "train_tokens": data["step_prompt_tokens"][index] + generated, "gold_reward": round(r["train/reward"], 4),
        })
    ends = [r["time"] for r in rows]
    return summarize(args, steps, ends[-1] - ends[args.warmup - 1] if args.warmup else None, version=version("prefrl"))


def run_trl(args: argparse.Namespace) -> dict:
    import_prefrl()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from prefrl.data.tasks import get_task
    from prefrl.models.loading import load_tokenizer, resolve_model

    class StepTimer(TrainerCallback):
        """Per step: total time, and the time from the first forward with gradients to the end."""

        def __init__(self) -> None:
            self.steps: list[dict] = []
            self.ends: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.begin, self.update_begin = time.perf_counter(), None
            self.sampling = self.reward = 0.0

        def forward_pre_hook(self, module, inputs):
            if torch.is_grad_enabled() and self.update_begin is None:
                self.update_begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            end = time.perf_counter()
            self.ends.append(end)
            self.steps.append({"step_s": end - self.begin, "sampling_s": self.sampling, "reward_s": self.reward,
                               "training_s": end - (self.update_begin or end)})

    timer = StepTimer()
    task = get_task(DATA)

    def gold_judge(prompts, completions, **kwargs) -> list[float]:
        started = time.perf_counter()
        scores = [task.judge(p, c) for p, c in zip(prompts, completions)]
        timer.reward += time.perf_counter() - started
        return scores

    data = plan(args)
    ordered = [data["prompts"][i] for step in data["order"] for i in step]
    dataset = Dataset.from_list([{"prompt": record.prompt} for record in ordered])
    tokenizer = load_tokenizer(args.model)
    model = AutoModelForCausalLM.from_pretrained(resolve_model(args.model), dtype=torch.float32)
    generate = model.generate

    def timed_generate(*a, **k):  # measurement only: TRL's call of the model's own generate
        started = time.perf_counter()
        try:
            return generate(*a, **k)
        finally:
            timer.sampling += time.perf_counter() - started

    model.generate = timed_generate
    model.register_forward_pre_hook(timer.forward_pre_hook)
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as run_dir:
        config = GRPOConfig(
            output_dir=run_dir, per_device_train_batch_size=args.batch_size * args.num_generations, gradient_accumulation_steps=1,
            num_generations=args.num_generations, max_completion_length=args.max_new_tokens, temperature=1.0, top_p=1.0, top_k=0,
            beta=args.beta, epsilon=0.2, scale_rewards="group", loss_type="dapo", num_iterations=1, max_steps=args.warmup + args.steps,
            learning_rate=LR, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, bf16=False,
            gradient_checkpointing=False, shuffle_dataset=False, seed=SEED, logging_steps=1, report_to="none", save_strategy="no",
            eval_strategy="no", use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=gold_judge, args=config, train_dataset=dataset, processing_class=tokenizer,
                              callbacks=[timer])
        trainer.train()
    logs = {entry["step"]: entry for entry in trainer.state.log_history if "completions/mean_length" in entry}
    rows_per_step, seen = args.batch_size * args.num_generations, 0
    steps = []
    for index, timing in enumerate(timer.steps):
        entry = logs[index + 1]
        generated = round(entry["completions/mean_length"] * rows_per_step)
        train_tokens, seen = int(entry["num_tokens"]) - seen, int(entry["num_tokens"])  # TRL's prompt + completion tokens
        steps.append({**timing, "generation_s": timing["sampling_s"], "generated": generated, "train_tokens": train_tokens,
                      "gold_reward": round(entry["reward"], 4)})
    prompt_tokens_match = [s["train_tokens"] - s["generated"] for s in steps] == data["step_prompt_tokens"]
    return summarize(args, steps, timer.ends[-1] - timer.ends[args.warmup - 1] if args.warmup else None,
                     version=version("trl"), prompt_tokens_match=prompt_tokens_match)


def worker(args: argparse.Namespace) -> None:
    """Child mode: run one framework; everything but the JSON result goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        result = (run_prefrl if args.worker == "prefrl" else run_trl)(args)
    print(json.dumps({"framework": args.worker, **result}))


def spawn(framework: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", framework, "--model", args.model, "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--num-generations", str(args.num_generations),
               "--max-new-tokens", str(args.max_new_tokens), "--beta", str(args.beta)]
    return run_child(framework, command)


def table(results: list[dict]) -> str:
    lines = ["| framework | s/step | steps/s | generation s (sampling s) | reward s | training s | other s | mean response tokens "
             "| generation tokens/s | training tokens/s | peak RSS MiB | other CPU load |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['framework']} | failed: {r['error']} |" + " |" * 11)
        else:
            other = "?" if r["other_cpu_cores"] is None else f"{r['other_cpu_cores']:.2f}"
            lines.append(f"| {r['framework']} | {r['s_per_step']:.2f} | {r['steps_per_s']:.4f} "
                         f"| {r['generation_s_per_step']:.2f} ({r['sampling_s_per_step']:.2f}) | {r['reward_s_per_step']:.3f} "
                         f"| {r['training_s_per_step']:.2f} | {r['other_s_per_step']:.2f} | {r['mean_response_length']:.1f} "
                         f"| {r['generation_tokens_per_s']:.1f} | {r['training_tokens_per_s']:.1f} | {r['peak_rss_mib']:.0f} | {other} cores |")
    ok = {r["framework"]: r for r in results if "error" not in r}
    if "prefrl" in ok and "trl" in ok:
        p, t = ok["prefrl"], ok["trl"]
        lines.append(f"| prefrl/TRL | {p['s_per_step'] / t['s_per_step']:.2f}× | {p['steps_per_s'] / t['steps_per_s']:.2f}× "
                     f"| {p['generation_s_per_step'] / t['generation_s_per_step']:.2f}× | | {p['training_s_per_step'] / t['training_s_per_step']:.2f}× "
                     f"| | {p['mean_response_length'] / t['mean_response_length']:.2f}× "
                     f"| {p['generation_tokens_per_s'] / t['generation_tokens_per_s']:.2f}× "
                     f"| {p['training_tokens_per_s'] / t['training_tokens_per_s']:.2f}× | {p['peak_rss_mib'] / t['peak_rss_mib']:.2f}× | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="measured GRPO steps (default 2)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up steps, not measured (default 1)")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts per step (default 16)")
    parser.add_argument("--num-generations", type=int, default=4, help="completions per prompt (default 4)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="longest completion (default 64)")
    parser.add_argument("--beta", type=float, default=0.0, help="KL weight β for both (default 0.0, TRL's default: no reference model)")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="smollm2-135m-instruct (default), tiny, or a local checkpoint")
    parser.add_argument("--only", choices=("prefrl", "trl"), help="run one framework only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--worker", choices=("prefrl", "trl"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1 or args.num_generations < 2 or args.max_new_tokens < 1 or args.beta < 0:
        parser.error("--steps, --batch-size and --max-new-tokens must be at least 1, --num-generations at least 2, --warmup and --beta at least 0")
    if args.worker:
        return worker(args)

    frameworks = [args.only] if args.only else ["prefrl", "trl"]
    notes = []
    if "trl" in frameworks and importlib.util.find_spec("trl") is None:
        frameworks.remove("trl")
        notes.append("TRL is not installed (pip install -e '.[bench]'): prefrl alone.")
    results = [spawn(framework, args) for framework in frameworks]
    settings = {"model": args.model, "data": DATA, "prompts_per_step": args.batch_size, "num_generations": args.num_generations,
                "max_new_tokens": args.max_new_tokens, "beta": args.beta, "warmup": args.warmup, "steps": args.steps,
                "precision": "fp32", "lr": LR}
    if args.json:
        print(json.dumps({"settings": settings, "machine": machine(), "results": results, "notes": notes}, indent=2))
    else:
        print(" ".join(notes) + "\n" if notes else "", end="")
        print(", ".join(f"{k}={v}" for k, v in {**settings, **machine()}.items()))
        print(table(results))
        for r in results:
            if "error" not in r:
                check = " (prompt token counts differ from prefrl's tokenization!)" if r.get("prompt_tokens_match") is False else ""
                steps = " ".join(f"{s['step_s']:.1f}" for s in r["steps"])
                rewards = " ".join(f"{s['gold_reward']:.2f}" for s in r["steps"])
                print(f"{r['framework']}: step times {steps} s (first {args.warmup} not measured); loop "
                      f"{r['loop_s_per_step'] or float('nan'):.2f} s/step; gold reward per step {rewards}{check}")
    sys.exit(1 if any("error" in r for r in results) else 0)


if __name__ == "__main__":
    main()
