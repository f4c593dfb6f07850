"""What the framework-comparison benchmarks share: running one framework in a child process and
measuring how busy the rest of the machine was meanwhile, and describing the machine."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every framework a benchmark starts (prefrl, TRL) gets the same thread policy as a prefrl run: idle
# OpenMP threads sleep, so a benchmark beside other work degrades by ≤ 1.4× instead of 2.5× or worse
# (docs/benchmarks.md, "Threads on a busy machine"). Children inherit it; it must precede torch's import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def version(name: str) -> str:
    try:
        return _version(name)
    except PackageNotFoundError:
        return "not installed" if importlib.util.find_spec(name) is None else "checkout"


def import_prefrl() -> None:
    if importlib.util.find_spec("prefrl") is None:  # a checkout without `pip install -e .`
        sys.path.insert(0, str(ROOT / "src"))


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (from /proc/stat), or None off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def prefrl_revision() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return version("prefrl")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?") \
        if Path("/proc/cpuinfo").exists() else "?"
    versions = {name: version(name) for name in ("torch", "transformers", "accelerate", "trl") if importlib.util.find_spec(name)}
    return {"nproc": os.cpu_count(), "cpu": cpu, "prefrl": prefrl_revision(), **versions}


def prune_run(run_dir: str | Path, keep_model: bool = False) -> None:
    """Delete a finished benchmark run's weights, keeping its logs and result.json.

    Each SmolLM2 run leaves ~2 GB (a model copy and AdamW state per checkpoint); a full benchmark
    sweep would otherwise fill the disk. A reward model that later runs read keeps its `model/`."""
    run_dir = Path(run_dir)
    doomed = [run_dir / "checkpoints", *run_dir.glob("iteration-*/model")]
    if not keep_model:
        doomed.append(run_dir / "model")
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)


def run_child(framework: str, command: list[str]) -> dict:
    """Run a worker command whose last stdout line is its JSON result; add the CPU load of others."""
    print(f"[bench] {framework}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    busy, own, started = busy_cpu_seconds(), os.times(), time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env)
    wall, after = time.perf_counter() - started, os.times()
    child_cpu = after.children_user + after.children_system - own.children_user - own.children_system
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        return {"framework": framework, "error": f"exit status {done.returncode} (its stderr is above)"}
    # CPU time other processes took while this one ran: the benchmark is only clean when it is ~0.
    other = None if busy is None else round(max(0.0, busy_cpu_seconds() - busy - child_cpu) / wall, 3)
    return {**json.loads(lines[-1]), "other_cpu_cores": other}


def summarize_pairs(args: argparse.Namespace, data: dict, step_s: list[float], loop_s: float | None, **extra) -> dict:
    """Throughput of a pairs benchmark's worker: measured steps only, tokens as counted by `data`."""
    measured = step_s[args.warmup :]
    seconds, pairs = sum(measured), args.steps * args.batch_size
    tokens = sum(data["step_tokens"][args.warmup :])
    return {
        "measured_steps": len(measured), "pairs": pairs, "tokens": tokens, "s_per_step": seconds / len(measured),
        "pairs_per_s": pairs / seconds, "tokens_per_s": tokens / seconds, "loop_s_per_step": None if loop_s is None else loop_s / args.steps,
        "step_s": [round(s, 4) for s in step_s], "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }


def pairs_table(results: list[dict]) -> str:
    """The markdown table of a pairs benchmark (prefrl against TRL), with the ratio row."""
    lines = ["| framework | pairs/s | tokens/s | s/step | peak RSS MiB | other CPU load |", "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['framework']} | failed: {r['error']} | | | | |")
        else:
            other = "?" if r["other_cpu_cores"] is None else f"{r['other_cpu_cores']:.2f}"
            lines.append(f"| {r['framework']} | {r['pairs_per_s']:.3f} | {r['tokens_per_s']:.1f} | {r['s_per_step']:.3f} "
                         f"| {r['peak_rss_mib']:.0f} | {other} cores |")
    ok = {r["framework"]: r for r in results if "error" not in r}
    if "prefrl" in ok and "trl" in ok:
        p, t = ok["prefrl"], ok["trl"]
        lines.append(f"| prefrl/TRL | {p['pairs_per_s'] / t['pairs_per_s']:.2f}× | {p['tokens_per_s'] / t['tokens_per_s']:.2f}× "
                     f"| {p['s_per_step'] / t['s_per_step']:.2f}× | {p['peak_rss_mib'] / t['peak_rss_mib']:.2f}× | |")
    return "\n".join(lines)


def trl_step_timer():
    """A transformers TrainerCallback that records each optimizer step's wall time and end time."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.step_s: list[float] = []
            self.ends: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())
            self.step_s.append(self.ends[-1] - self.begin)

    return StepTimer()
