"""Threads on a small, shared CPU: step time with 1 or 2 intra-op threads and OpenMP's wait policy
(spinning, torch's default, or passive), on an idle machine and beside one busy process.

    python benchmarks/threads.py                       # reward, DPO and GRPO steps on SmolLM2-135M
    python benchmarks/threads.py --model tiny --steps 2 # quick check of the script

Each setting runs `prefrl train <recipe>` in its own process (the wait policy is read once, when
torch starts) for `--steps` optimizer steps; the first step is a warm-up and the others are averaged
from metrics.jsonl (`perf/step_s`). "busy" starts one CPU-bound process (a pure-Python loop at normal
priority) beside the run, as another job on the machine would. Prints a table; `--json` the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import busy_cpu_seconds, machine  # noqa: E402  (benchmarks/ is on the path)

STEPS = {
    "reward": ["data=constraints", "batch_size=8", "num_eval=0"],
    "dpo": ["data=constraints", "batch_size=8", "num_eval=0"],
    "grpo": ["data=constraints", "batch_size=8", "num_generations=4", "max_new_tokens=32", "kl_coef=0", "num_eval=0"],
}
SETTINGS = [  # (threads, OMP_WAIT_POLICY)
    (1, "PASSIVE"),
    (2, "PASSIVE"),
    (2, "ACTIVE"),
]


def spin() -> subprocess.Popen:
    """One busy process: a pure-Python loop that wants a whole core."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_step(recipe: str, model: str, threads: int, wait_policy: str, steps: int, bf16: bool, busy: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="prefrl-threads-") as out:
        command = [
            sys.executable, "-m", "prefrl.cli", "train", recipe, f"model={model}", f"output_dir={out}", f"max_steps={steps}",
            f"num_threads={threads}", "progress=false", f"bf16={str(bf16).lower()}", *STEPS[recipe],
        ]
        env = {**os.environ, "OMP_WAIT_POLICY": wait_policy}
        env.pop("OMP_NUM_THREADS", None)
        other = spin() if busy else None
        cpu_before, started = busy_cpu_seconds(), time.perf_counter()
        try:
            completed = subprocess.run(command, env=env, capture_output=True, text=True)
        finally:
            if other is not None:
                other.kill()
                other.wait()
        wall = time.perf_counter() - started
        if completed.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
        step_times = [json.loads(line)["perf/step_s"] for line in Path(out, "metrics.jsonl").read_text().splitlines() if "perf/step_s" in line]
    measured = step_times[1:] or step_times
    cpu = busy_cpu_seconds()
    return {
        "recipe": recipe, "threads": threads, "wait_policy": wait_policy, "load": "busy" if busy else "idle",
        "step_s": sum(measured) / len(measured), "steps_measured": len(measured), "machine_busy_cores": (cpu - cpu_before) / wall if cpu and cpu_before else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--recipes", default="reward,dpo,grpo")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per run; the first is a warm-up")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (the recipes' defaults decide otherwise)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = []
    for recipe in args.recipes.split(","):
        for busy in (False, True):
            for threads, wait_policy in SETTINGS:
                row = run_step(recipe, args.model, threads, wait_policy, args.steps, args.bf16, busy)
                rows.append(row)
                print(f"{recipe:7s} {row['load']:5s} threads={threads} wait={wait_policy:8s} {row['step_s']:7.2f} s/step (machine busy {row['machine_busy_cores'] or 0:.2f} cores)", flush=True)
    print(f"\nmachine: {machine()}")
    print("\n| step | threads | OMP_WAIT_POLICY | idle s/step | beside one busy process s/step | busy / idle |")
    print("|---|---:|---|---:|---:|---:|")
    for recipe in args.recipes.split(","):
        for threads, wait_policy in SETTINGS:
            idle, busy = (next(r for r in rows if r["recipe"] == recipe and r["threads"] == threads and r["wait_policy"] == wait_policy and r["load"] == load) for load in ("idle", "busy"))
            print(f"| {recipe} | {threads} | {wait_policy} | {idle['step_s']:.2f} | {busy['step_s']:.2f} | {busy['step_s'] / idle['step_s']:.2f}× |")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
