"""CPU threads: how many intra-op threads torch uses, and how OpenMP's idle threads wait.

On a small CPU (2 cores here) torch's default — one intra-op thread per core, each spinning while it
waits for work — collapses as soon as another process wants a core: the spinning threads and the
other process take turns, and a step can become 10× slower (docs/benchmarks.md, "Threads").
Two settings fix that:

- `OMP_WAIT_POLICY=PASSIVE`: an OpenMP thread that waits sleeps instead of spinning. The OpenMP
  runtime reads it once, when torch is first imported, so `prefrl/__init__.py` sets it (unless the
  user already did) before anything imports torch.
- `num_threads`: the intra-op thread count, set per run with `torch.set_num_threads`. 0 (the
  default) picks `default_num_threads()`, chosen by the measurement in docs/benchmarks.md.
"""

from __future__ import annotations

import os

WAIT_POLICY_VARIABLE = "OMP_WAIT_POLICY"


def set_passive_wait_policy() -> None:
    """Ask OpenMP threads to sleep while waiting; a value the user set is kept."""
    os.environ.setdefault(WAIT_POLICY_VARIABLE, "PASSIVE")


def available_cores() -> int:
    """Cores this process may run on (its affinity mask), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_num_threads(cores: int | None = None) -> int:
    """Every core this process may use. With the passive wait policy this keeps the idle-machine
    speed of torch's default and loses little beside a busy process (measured in
    docs/benchmarks.md); `num_threads=1` is the choice when several jobs share the cores."""
    return max(1, cores if cores is not None else available_cores())


def configure_threads(num_threads: int) -> int:
    """Set torch's intra-op threads (0: the default above); returns the count in force."""
    import torch

    count = num_threads if num_threads > 0 else default_num_threads()
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def has_fast_bf16() -> bool:
    """Whether bf16 autocast is the faster choice here: a GPU that supports bf16, or a CPU with bf16
    units (AVX-512 BF16 or AMX). Policy recipes default `bf16` to this (1.4× per step here)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


DEFAULT_BF16_VARIABLE = "PREFRL_DEFAULT_BF16"


def default_bf16() -> bool:
    """The policy recipes' default for `bf16`: $PREFRL_DEFAULT_BF16 (0/1) when set — the test suite
    sets 0 so its numbers are the same on every machine — else `has_fast_bf16()`."""
    value = os.environ.get(DEFAULT_BF16_VARIABLE, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return has_fast_bf16()
