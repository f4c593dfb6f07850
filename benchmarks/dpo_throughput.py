"""DPO training throughput: prefrl against TRL's `DPOTrainer`.

What is measured: optimizer steps of DPO (sigmoid loss, β = 0.1: the reference model's log-probs of
chosen and rejected without a graph, the policy's with one, the loss, backward, gradient clipping, an
AdamW step) on the same model (SmolLM2-135M-Instruct by default; the reference is a frozen copy), the
same preference pairs of the built-in `arithmetic` task (conversational) in the same order, the same
batch (pairs per optimizer step), max_length, learning-rate schedule (5e-7, linear, 10% warm-up:
prefrl's DPO defaults) and precision (fp32). Reference log-probs are computed during the step for
both (TRL's `precompute_ref_log_probs=False`; prefrl computes them the first time a pair is seen,
and every measured pair is new). No evaluation, no checkpoints during the measured steps, no
gradient checkpointing, one process.

How: each framework runs in its own subprocess (so peak RSS is its own and neither warms the
other's caches) for W warm-up steps that are not counted, then S measured steps.
- prefrl: `train_dpo`; per-step times are `perf/step_s` of `<run>/metrics.jsonl` (collate,
  reference and policy forwards, backward, optimizer step).
- TRL: `DPOTrainer` on a conversational explicit-prompt dataset built from the same pairs,
  ordered as prefrl's sampler takes them and read sequentially; per-step times come from a
  `TrainerCallback` (on_step_begin → on_step_end: forwards, backward, clipping, optimizer step).
Tokens are counted once, with prefrl's tokenization (`tokenize_prompt_response`: prompt + chosen +
prompt + rejected per pair, no padding), for both; tokens/s = tokens of the measured steps' pairs /
summed time of the measured steps. "tokens match" checks that TRL's own tokenization gives the same
counts. "loop s/step" is the wall time between the ends of step W and step W+S over S (everything
in the loop, logging included), a cross-check on the per-step timers. "other CPU load" is the CPU
time other processes on the machine used while a framework ran (/proc/stat minus the subprocess's
own), in cores: torch's threads share the cores with them, so only runs with ~0 there compare.

    python benchmarks/dpo_throughput.py                 # SmolLM2, fp32, batch 8, 2 + 6 steps
    python benchmarks/dpo_throughput.py --model tiny --steps 3 --warmup 1   # quick check
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import import_prefrl, machine, pairs_table, run_child, summarize_pairs, trl_step_timer, version  # noqa: E402
DATA, SEED, LR, BETA = "arithmetic", 0, 5e-7, 0.1  # prefrl's DPOConfig defaults (lr, β)


def plan(args: argparse.Namespace) -> dict:
    """The pairs, which of them each optimizer step takes (prefrl's sampler), and their tokens."""
    import_prefrl()
    from prefrl.data.batching import tokenize_prompt_response
    from prefrl.data.loaders import load_preference_pairs
    from prefrl.engine.supervised import GlobalBatchSampler
    from prefrl.models.loading import load_tokenizer

    total = args.warmup + args.steps
    pairs = load_preference_pairs(DATA, "train", seed=0, limit=total * args.batch_size)
    sampler = GlobalBatchSampler(len(pairs), args.batch_size, SEED)
    order = [sampler.indices_for_step(step) for step in range(total)]
    tokenizer = load_tokenizer(args.model)
    pair_tokens = []
    for pair in pairs:
        prompt_ids, chosen_ids = tokenize_prompt_response(tokenizer, pair.prompt, pair.chosen)
        _, rejected_ids = tokenize_prompt_response(tokenizer, pair.prompt, pair.rejected)
        pair_tokens.append(2 * len(prompt_ids) + len(chosen_ids) + len(rejected_ids))
    step_tokens = [sum(pair_tokens[i] for i in step) for step in order]
    return {"pairs": pairs, "order": order, "step_tokens": step_tokens, "pair_tokens": pair_tokens}


def run_prefrl(args: argparse.Namespace) -> dict:
    import_prefrl()
    from prefrl.algorithms.dpo import DPOConfig, train_dpo
    from prefrl.engine.metrics import read_metrics

    data = plan(args)
    with tempfile.TemporaryDirectory(prefix="bench-prefrl-") as run_dir:
        config = DPOConfig(
            model=args.model, data=DATA, data_seed=0, seed=SEED, max_steps=args.warmup + args.steps, batch_size=args.batch_size,
            num_train=len(data["pairs"]), num_eval=0, output_dir=run_dir, progress=False, bf16=False, lr=LR, lr_scheduler="linear",
            warmup_ratio=0.1, weight_decay=0.0, max_grad_norm=1.0, beta=BETA, loss_type="sigmoid", label_smoothing=0.0,
            max_length=args.max_length, logging_steps=1, save_steps=0,
        )
        train_dpo(config)
        rows = [r for r in read_metrics(run_dir) if "perf/step_s" in r]
    ends = [r["time"] for r in rows]
    logged = [round(r["perf/tokens_per_s"] * r["perf/step_s"]) for r in rows]
    return summarize_pairs(
        args, data, [r["perf/step_s"] for r in rows], ends[-1] - ends[args.warmup - 1] if args.warmup else None,
        version=version("prefrl"), tokens_match=logged == data["step_tokens"], final_loss=round(rows[-1]["train/loss"], 4),
    )


def run_trl(args: argparse.Namespace) -> dict:
    import_prefrl()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    from prefrl.models.loading import load_tokenizer, resolve_model

    data = plan(args)
    ordered = [data["pairs"][i] for step in data["order"] for i in step]
    dataset = Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in ordered])
    tokenizer = load_tokenizer(args.model)
    model = AutoModelForCausalLM.from_pretrained(resolve_model(args.model), dtype=torch.float32)
    timer = trl_step_timer()
    with tempfile.TemporaryDirectory(prefix="bench-trl-") as run_dir:
        config = DPOConfig(
            output_dir=run_dir, per_device_train_batch_size=args.batch_size, gradient_accumulation_steps=1,
            max_steps=args.warmup + args.steps, learning_rate=LR, lr_scheduler_type="linear", warmup_steps=0.1, weight_decay=0.0,
            max_grad_norm=1.0, bf16=False, gradient_checkpointing=False, max_length=args.max_length, beta=BETA, loss_type=["sigmoid"],
            label_smoothing=0.0, precompute_ref_log_probs=False, train_sampling_strategy="sequential", seed=SEED, logging_steps=1,
            report_to="none", save_strategy="no", eval_strategy="no", use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
        )
        trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=[timer])
        trl_tokens = [2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in trainer.train_dataset]
        expected = [data["pair_tokens"][i] for step in data["order"] for i in step]
        trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return summarize_pairs(
        args, data, timer.step_s, timer.ends[-1] - timer.ends[args.warmup - 1] if args.warmup else None,
        version=version("trl"), tokens_match=trl_tokens == expected, final_loss=round(losses[-1], 4) if losses else None,
    )


def worker(args: argparse.Namespace) -> None:
    """Child mode: train with one framework; everything but the JSON result goes to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        result = (run_prefrl if args.worker == "prefrl" else run_trl)(args)
    print(json.dumps({"framework": args.worker, **result}))


def spawn(framework: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--worker", framework, "--model", args.model, "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length)]
    return run_child(framework, command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="measured optimizer steps (default 6)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up steps, not measured (default 2)")
    parser.add_argument("--batch-size", type=int, default=8, help="preference pairs per optimizer step (default 8)")
    parser.add_argument("--max-length", type=int, default=512, help="longest prompt + response in tokens (default 512)")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="smollm2-135m-instruct (default), tiny, or a local checkpoint")
    parser.add_argument("--only", choices=("prefrl", "trl"), help="run one framework only")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--worker", choices=("prefrl", "trl"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be at least 1, --warmup at least 0")
    if args.worker:
        return worker(args)

    frameworks = [args.only] if args.only else ["prefrl", "trl"]
    notes = []
    if "trl" in frameworks and importlib.util.find_spec("trl") is None:
        frameworks.remove("trl")
        notes.append("TRL is not installed (pip install -e '.[bench]'): prefrl alone.")
    results = [spawn(framework, args) for framework in frameworks]
    settings = {"model": args.model, "data": DATA, "loss": "sigmoid", "beta": BETA, "batch_size": args.batch_size, "warmup": args.warmup,
                "steps": args.steps, "max_length": args.max_length, "precision": "fp32", "lr": LR}
    if args.json:
        print(json.dumps({"settings": settings, "machine": machine(), "results": results, "notes": notes}, indent=2))
    else:
        print(" ".join(notes) + "\n" if notes else "", end="")
        print(", ".join(f"{k}={v}" for k, v in {**settings, **machine()}.items()))
        print(pairs_table(results))
        for r in results:
            if "error" not in r:
                check = "" if r["tokens_match"] else " (token counts differ from prefrl's tokenization!)"
                steps = " ".join(f"{s:.2f}" for s in r["step_s"])
                print(f"{r['framework']}: step times {steps} s (first {args.warmup} not measured); loop {r['loop_s_per_step'] or float('nan'):.3f} "
                      f"s/step; final loss {r['final_loss']}{check}")
    sys.exit(1 if any("error" in r for r in results) else 0)


if __name__ == "__main__":
    main()
