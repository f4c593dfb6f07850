"""R2M's cost (paper 002, issue 5): wall time and memory per GRPO step with `r2m=true` against plain
GRPO, same proxy Bradley–Terry reward model, same prompts and seeds, each in its own process.

Runs: plain GRPO; R2M (h read from the update's own forward, refreshed in float32 after the
update); R2M with the refresh under bfloat16 autocast (`r2m_refresh_bf16=true`). Per run: mean
seconds per step after the first (warm-up) step, its split (sampling, reward, policy update, R2M's
feedback-head update with the refresh pass), and the process's peak resident memory.

    python benchmarks/r2m_overhead.py --reward-model runs/r2m_overoptimisation/proxy
    python benchmarks/r2m_overhead.py --model tiny --steps 2 --reward-model RM   # quick check (RM: a tiny BT run)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import import_prefrl, machine, run_child  # noqa: E402

PHASES = ("generation", "reward", "training", "reward_update")
RUNS = ("plain", "r2m", "r2m-bf16")


def worker(args: argparse.Namespace) -> None:
    import_prefrl()
    from prefrl.algorithms.grpo import GRPOConfig, train_group_policy
    from prefrl.engine.metrics import read_metrics

    with tempfile.TemporaryDirectory() as run:
        config = GRPOConfig(
            model=args.model, data=args.data, reward=args.reward_model, r2m=args.worker != "plain", r2m_refresh_bf16=args.worker == "r2m-bf16", max_steps=args.steps,
            batch_size=args.batch_size, num_generations=args.num_generations, max_new_tokens=args.max_new_tokens, num_eval=0,
            output_dir=run, progress=False, seed=0,
        )
        train_group_policy(config, recipe="grpo")
        steps = [m for m in read_metrics(run) if "perf/step_s" in m][1:]  # the first step warms up
    result = {"step_s": statistics.mean(m["perf/step_s"] for m in steps), "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    result.update({f"{phase}_s": statistics.mean(m.get(f"perf/{phase}_s", 0.0) for m in steps) for phase in PHASES})
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default="constraints")
    parser.add_argument("--reward-model", required=True, help="a Bradley–Terry run directory (the proxy R2M extends)")
    parser.add_argument("--steps", type=int, default=4, help="steps per run; the first is warm-up and not counted")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--worker", choices=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    forwarded = [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "worker"]
    results = {name: run_child(name, [sys.executable, __file__, *forwarded, f"--worker={name}"]) for name in RUNS}
    print(json.dumps({"machine": machine(), **results}))
    plain = results["plain"]
    print("| GRPO | s/step | " + " | ".join(f"{p} s" for p in PHASES) + " | peak RSS MiB | other CPU load |")
    print("|---|---:|" + "---:|" * len(PHASES) + "---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['step_s']:.2f} | " + " | ".join(f"{r[f'{p}_s']:.2f}" for p in PHASES) + f" | {r['peak_rss_mib']:.0f} | {r['other_cpu_cores']} cores |")
    for name in RUNS[1:]:
        r = results[name]
        print(f"| **{name} / plain** | **{r['step_s'] / plain['step_s']:.3f}×** |" + " |" * len(PHASES) + f" {r['peak_rss_mib'] / plain['peak_rss_mib']:.3f}× | |")


if __name__ == "__main__":
    main()
