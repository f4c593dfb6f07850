"""TRL's GRPOTrainer with a prefrl preference model as its reward function (prefrl.integrations.trl).

What is measured: S GRPO optimizer steps of TRL's `GRPOTrainer` (B prompts × K completions × at
most N new tokens, fp32, one process, CPU unless a GPU is there) whose only reward function is
`reward_function(REWARD)`: a prefrl preference model (default: a fresh tiny Bradley–Terry model
saved to a run directory and loaded by path, as a user would; any run directory or gold:TASK
works). Per step: the whole step's seconds, and the seconds and rows/s of the reward call alone, so
the adapter's share of a GRPO step is visible. The first step also pays for warm-up (allocation,
first forward), so both steps are printed.

    python benchmarks/trl_reward_adapter.py                                   # tiny policy, tiny BT reward
    python benchmarks/trl_reward_adapter.py --policy smollm2-135m-instruct --reward runs/bt
    python benchmarks/trl_reward_adapter.py --reward gold:arithmetic --json

Needs the bench extra (`pip install -e ".[bench]"`: trl).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import import_prefrl, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="tiny", help="policy model (prefrl name, HF name or path)")
    parser.add_argument("--reward", default=None, help="preference-model run directory or gold:TASK (default: a fresh tiny BT model)")
    parser.add_argument("--data", default="arithmetic", help="built-in task whose prompts (and reference answers) GRPO trains on")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4, help="prompts per step")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--reward-batch-size", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    import_prefrl()
    import torch
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, TrainerCallback

    from prefrl.data.tasks import get_task
    from prefrl.integrations.trl import reward_function
    from prefrl.models.loading import load_tokenizer, resolve_model
    from prefrl.preference.bradley_terry import BradleyTerryModel

    with tempfile.TemporaryDirectory(prefix="bench-trl-reward-") as scratch:
        reward_path = args.reward
        if reward_path is None:
            reward_path = str(Path(scratch, "bt"))
            BradleyTerryModel.from_base("tiny").save(Path(reward_path, "model"))
        loaded = time.perf_counter()
        reward = reward_function(reward_path, batch_size=args.reward_batch_size)
        load_s = time.perf_counter() - loaded

        reward_calls: list[dict] = []

        def timed_reward(prompts, completions, **columns):
            started = time.perf_counter()
            values = reward(prompts, completions, **columns)
            reward_calls.append({"rows": len(values), "seconds": time.perf_counter() - started})
            return values

        timed_reward.__name__ = reward.__name__

        class StepTimer(TrainerCallback):
            def __init__(self):
                self.steps: list[float] = []

            def on_step_begin(self, *_, **__):
                self.begin = time.perf_counter()

            def on_step_end(self, *_, **__):
                self.steps.append(time.perf_counter() - self.begin)

        timer = StepTimer()
        rows = get_task(args.data).generate(args.batch_size * args.steps, split="train", seed=0, fmt="conversational")
        dataset = Dataset.from_list([{"prompt": row["prompt"], "reference": row["chosen"]} for row in rows])
        config = trl.GRPOConfig(
            output_dir=str(Path(scratch, "run")), per_device_train_batch_size=args.batch_size * args.num_generations,
            num_generations=args.num_generations, max_completion_length=args.max_new_tokens, max_steps=args.steps, learning_rate=1e-6,
            logging_steps=1, report_to="none", save_strategy="no", bf16=False, disable_tqdm=True, seed=0, shuffle_dataset=False,
            use_cpu=not torch.cuda.is_available(),
        )
        policy = AutoModelForCausalLM.from_pretrained(resolve_model(args.policy), dtype=torch.float32)
        trainer = trl.GRPOTrainer(model=policy, reward_funcs=[timed_reward], args=config, train_dataset=dataset,
                                  processing_class=load_tokenizer(args.policy), callbacks=[timer])
        trainer.train()

    key = f"rewards/{reward.__name__}/mean"
    logged = [entry[key] for entry in trainer.state.log_history if key in entry]
    steps = [
        {"step": index + 1, "step_s": round(step_s, 3), "reward_s": round(call["seconds"], 4), "reward_rows": call["rows"],
         "reward_rows_per_s": round(call["rows"] / call["seconds"], 1), "reward_share": round(call["seconds"] / step_s, 4),
         "mean_reward": round(mean, 4)}
        for index, (step_s, call, mean) in enumerate(zip(timer.steps, reward_calls, logged))
    ]
    result = {"policy": args.policy, "reward": args.reward or "tiny BT (fresh)", "reward_name": reward.__name__, "reward_load_s": round(load_s, 3),
              "steps": steps, "machine": machine(), "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"GRPOTrainer (trl {trl.__version__}) with {result['reward']} as reward {reward.__name__!r}; "
          f"policy {args.policy}, {args.batch_size} prompts × {args.num_generations} completions × ≤{args.max_new_tokens} tokens; "
          f"reward model loaded in {load_s:.2f} s")
    print("| step | step s | reward s | reward rows/s | reward share | mean reward |\n|---:|---:|---:|---:|---:|---:|")
    for step in steps:
        print(f"| {step['step']} | {step['step_s']:.2f} | {step['reward_s']:.3f} | {step['reward_rows_per_s']:.0f} | {step['reward_share']:.1%} | {step['mean_reward']:.3f} |")


if __name__ == "__main__":
    main()
