"""Does the Bradley–Terry reward model generalise? Held-out preference accuracy on the test split
(same generator as training) and on the ood split (other templates, phrasings, topics and kinds),
against the number of training pairs.

    python benchmarks/reward_generalisation.py                      # 160, 320, 640, 1280 pairs on constraints
    python benchmarks/reward_generalisation.py --pairs 320 --data arithmetic
    python benchmarks/reward_generalisation.py --model tiny --pairs 16 --eval-pairs 8   # check the script

Each size is `prefrl train reward` with the demo's settings (8 pairs per step, lr 5e-5, bf16
autocast, one pass over the pairs) in its own process; finished sizes keep their result.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from prefrl.engine.threads import has_fast_bf16

from harness import machine, prune_run  # noqa: E402  (benchmarks/ is on the path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default="constraints")
    parser.add_argument("--pairs", default="160,320,640,1280")
    parser.add_argument("--eval-pairs", type=int, default=200)
    parser.add_argument("--runs", default="runs/reward_generalisation")
    parser.add_argument("extra", nargs="*", help="key=value overrides for every run (e.g. num_threads=1)")
    args = parser.parse_args()

    from prefrl.data.loaders import load_preference_pairs
    from prefrl.eval.preference import evaluate_preference
    from prefrl.preference.bradley_terry import BradleyTerryModel

    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    held_out = {split: load_preference_pairs(args.data, split, 0, args.eval_pairs) for split in ("test", "ood")}
    rows = []
    for count in map(int, args.pairs.split(",")):
        run_dir = runs / f"{args.data}-{count}"
        result_path = run_dir / "result.json"
        if not result_path.is_file():
            steps = max(1, count // 8)
            command = [
                sys.executable, "-m", "prefrl.cli", "train", "reward", f"model={args.model}", f"data={args.data}", f"output_dir={run_dir}",
                f"max_steps={steps}", "batch_size=8", "lr=5e-5", f"num_train={count}", "num_eval=0", f"bf16={str(has_fast_bf16()).lower()}", "progress=false", *args.extra,
            ]
            started = time.perf_counter()
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode:
                raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
            minutes = (time.perf_counter() - started) / 60
            model = BradleyTerryModel.load(run_dir / "model", batch_size=16)
            model.autocast_bf16 = has_fast_bf16()  # emulated bf16 is ~20x slower (docs/benchmarks.md)
            scores = {split: evaluate_preference(model, pairs) for split, pairs in held_out.items()}
            result = {"pairs": count, "steps": steps, "minutes": minutes, **scores, "command": "prefrl " + " ".join(command[3:]),
                      "load_average": os.getloadavg()[0], "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M")}
            result_path.write_text(json.dumps(result, indent=2))
            prune_run(run_dir)
        rows.append(json.loads(result_path.read_text()))
        row = rows[-1]
        print(f"{count} pairs: test {row['test']['accuracy']:.3f}, ood {row['ood']['accuracy']:.3f} ({row['minutes']:.1f} min)", flush=True)

    print(f"\n{args.data}, {args.eval_pairs} held-out pairs per split; machine {machine()}")
    print("| training pairs | steps | test accuracy [95% CI] | ood accuracy [95% CI] | minutes |")
    print("|---:|---:|---|---|---:|")
    for r in rows:
        cells = [f"{r[s]['accuracy']:.3f} [{r[s]['accuracy_ci_low']:.2f}–{r[s]['accuracy_ci_high']:.2f}]" for s in ("test", "ood")]
        print(f"| {r['pairs']} | {r['steps']} | {cells[0]} | {cells[1]} | {r['minutes']:.1f} |")


if __name__ == "__main__":
    main()
