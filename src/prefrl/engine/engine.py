"""The loop plumbing every recipe shares, on `accelerate`.

`Engine` owns the Accelerator, the AdamW optimizer and its warm-up + decay schedule, gradient
accumulation, clipping, the NaN/inf guard, atomic checkpoints and resume, metrics and the progress
bar. A recipe owns its model and its loss; it hands the engine one optimizer step's micro-batches,
a `loss_fn(model, micro_batch) -> (loss, stats)` and, when micro-batches average over different
numbers of units (response tokens under a token-mean), a `weight_fn(micro_batch) -> units`: the step
then minimises the mean over the units of the global batch (all micro-batches, all processes).

Batch convention: `batch_size` is the global batch (examples per optimizer step over all processes
and accumulation steps), so one process and two processes with the same config see the same data
and take the same steps.
"""

from __future__ import annotations

import contextlib
import random
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import get_scheduler

from prefrl.config import TrainConfig, format_config, save_config
from prefrl.engine import checkpoint as ckpt
from prefrl.engine.metrics import MetricsWriter
from prefrl.engine.progress import ProgressBar
from prefrl.engine.threads import configure_threads
from prefrl.errors import ConfigError, NonFiniteLossError, PrefrlError, RunDirectoryError

LossFn = Callable[[torch.nn.Module, Any], "tuple[torch.Tensor, dict[str, Any]]"]
WeightFn = Callable[[Any], float]  # how many units (examples, tokens) a micro-batch's mean loss averages over
SCHEDULES = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


def _trackers(report_to: str) -> list[str]:
    return [t.strip() for t in report_to.split(",") if t.strip() and t.strip() != "none"]


def has_accelerator_device() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    return bool(accelerator.is_available()) if accelerator is not None else torch.cuda.is_available()


def enable_gradient_checkpointing(model: torch.nn.Module) -> int:
    """Hugging Face gradient checkpointing (non-reentrant) on every HF model inside `model` — the
    language model under a reward head, a value head, a LoRA wrapper —, the outermost ones only.
    Returns how many it found. Non-reentrant checkpointing needs no input that requires grad (so it
    works with frozen embeddings and LoRA) and gives the same gradients as keeping the activations."""
    from transformers import PreTrainedModel

    found = 0

    def visit(module: torch.nn.Module) -> None:
        nonlocal found
        if isinstance(module, PreTrainedModel) and getattr(module, "supports_gradient_checkpointing", False):
            if hasattr(module, "activation_checkpointing_enable"):  # transformers ≥ 5.x's name; the old one warns
                module.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            found += 1
            return
        for child in module.children():
            visit(child)

    visit(model)
    return found


def no_decay(name: str, parameter: torch.nn.Parameter) -> bool:
    """Biases and norm weights (1-D) are not decayed, as in most LM fine-tuning recipes."""
    return parameter.ndim < 2


def reset_other_precision(wanted: str) -> None:
    """accelerate keeps one mixed-precision setting per Python process: a run that asks for another
    one than an earlier run in the same process (bf16 after fp32, as in the demo or a test suite)
    starts from a fresh accelerate state instead of failing or silently keeping the old one."""
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and str(AcceleratorState().mixed_precision) != wanted:
        AcceleratorState._reset_state()


class Engine:
    def __init__(self, config: TrainConfig, recipe: str):
        self.config = config
        self.recipe = recipe
        self.output_dir = Path(config.output_dir)
        configure_threads(config.num_threads)
        reset_other_precision("bf16" if config.bf16 else "no")
        self.accelerator = Accelerator(
            # None lets `accelerate launch --mixed_precision` / its config file decide.
            mixed_precision="bf16" if config.bf16 else None,
            log_with=_trackers(config.report_to) or None,
            project_dir=str(self.output_dir),
            # One scheduler step per optimizer step, whatever the number of processes.
            step_scheduler_with_optimizer=False,
            # Without a GPU, accelerate only turns torchrun's processes into a gloo group when told
            # it runs on CPU; otherwise each process would train alone.
            cpu=not has_accelerator_device(),
        )
        world = self.accelerator.num_processes
        if self.accelerator.distributed_type.value == "DEEPSPEED" and config.gradient_accumulation_steps > 1:
            raise ConfigError(
                "gradient_accumulation_steps > 1 under DeepSpeed: accelerate's backward steps the DeepSpeed engine after every "
                "micro-batch, so prefrl's accumulation would not hold. Use gradient_accumulation_steps=1 and a larger batch_size."
            )
        if config.batch_size % world:
            raise ConfigError(f"batch_size={config.batch_size} must be divisible by the number of processes ({world})")
        self.step = 0  # the recipe's step: a batch of data, or a rollout and its updates
        self.updates = 0  # optimizer steps taken (several per step in PPO-style recipes)
        self.total_steps = config.max_steps  # SPPO runs max_steps per iteration: it sets this higher
        self.model: torch.nn.Module | None = None
        self.optimizer = None
        self.scheduler = None
        self.run_lock: ckpt.RunLock | None = None
        self._on_main(self._claim_run_directory)
        self.resume_dir = self._find_resume_dir()
        set_seed(config.seed)

    # ---- set-up -----------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def print(self, *args: Any) -> None:
        self.accelerator.print(*args)

    def _on_main(self, action: Callable[[], None]) -> None:
        """Run a start-up check on the main process; if it fails, every process raises (none hangs)."""
        problem: PrefrlError | None = None
        if self.is_main:
            try:
                action()
            except PrefrlError as error:
                problem = error
        failed = self.mean_over_processes({"failed": float(problem is not None)})["failed"]
        if problem is not None:
            raise problem
        if failed:
            raise RunDirectoryError(f"output_dir {str(self.output_dir)!r}: the main process stopped at start-up (its error says why)")

    def _claim_run_directory(self) -> None:
        """One run per directory. An existing output_dir is locked now, before data and models load;
        a new one is created and locked by `start_run` (so a run that fails validation leaves none).
        A directory holding another run's checkpoints is refused unless resume=true (continue it) or
        overwrite=true (`start_run` clears it)."""
        if self.output_dir.exists() and not self.output_dir.is_dir():
            raise RunDirectoryError(f"output_dir {str(self.output_dir)!r} is a file, not a directory")
        if not self.output_dir.is_dir():
            return
        self._lock_run_directory()
        try:
            self._check_earlier_run()
        except PrefrlError:
            self._release_run_lock()
            raise

    def _lock_run_directory(self) -> None:
        lock = ckpt.RunLock(self.output_dir).acquire()
        self.run_lock = lock
        self._lock_finalizer = weakref.finalize(self, lock.release)  # released when the run ends or the engine goes
        if lock.took_over:
            self.print(f"[{self.recipe}] {self.output_dir}: took over the lock of pid {lock.took_over}, which is no longer running")

    def _release_run_lock(self) -> None:
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None

    def _check_earlier_run(self) -> None:
        checkpoints = ckpt.list_checkpoints(self.output_dir)
        if not checkpoints or self.config.overwrite:
            return
        newest = checkpoints[-1][1]
        if not self.config.resume:
            raise RunDirectoryError(
                f"output_dir {str(self.output_dir)!r} holds another run's checkpoints ({', '.join(p.name for _, p in checkpoints)}). "
                "resume=true continues that run; overwrite=true deletes its checkpoints and metrics and starts afresh; "
                "or choose another output_dir."
            )
        recipe = ckpt.read_trainer_state(newest).get("recipe")
        if recipe is not None and recipe != self.recipe:
            raise RunDirectoryError(
                f"output_dir {str(self.output_dir)!r}: resume=true, but its checkpoint {newest.name} is from a {recipe!r} run, "
                f"not {self.recipe!r}. Use overwrite=true to start afresh, or choose another output_dir."
            )

    def _find_resume_dir(self) -> Path | None:
        if not self.config.resume:
            return None
        found = ckpt.latest_checkpoint(self.output_dir)
        if found is None:
            self.print(f"resume=true but {self.output_dir} has no checkpoint yet: starting from step 0")
        return found

    def _open_run_directory(self) -> None:
        """Main process, at start_run: create and lock a new directory (a run that raced us to it
        is caught here), clear an earlier run for overwrite=true, drop staging left by killed writes."""
        if self.run_lock is None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self._lock_run_directory()
            self._check_earlier_run()
        if self.config.overwrite and not self.config.resume:
            cleared = ckpt.clear_run(self.output_dir)
            if cleared:
                self.print(f"[{self.recipe}] overwrite=true: removed the earlier run's {', '.join(cleared)} from {self.output_dir}")
        ckpt.remove_stale_staging(self.output_dir)

    def start_run(self) -> None:
        """Create and lock the run directory, print and save the resolved config, open metrics/trackers."""
        self._on_main(self._open_run_directory)
        if self.is_main:
            save_config(self.config, self.output_dir / "config.yaml")
            self.print(f"[{self.recipe}] resolved config:\n{format_config(self.config)}")
        self.accelerator.wait_for_everyone()
        resume_step = ckpt.read_trainer_state(self.resume_dir)["step"] if self.resume_dir else None
        self.metrics = MetricsWriter(self.output_dir, resume_step=resume_step, enabled=self.is_main)
        if _trackers(self.config.report_to):
            from prefrl.config import config_to_dict

            flat = {k: v for k, v in config_to_dict(self.config).items() if isinstance(v, (int, float, str, bool))}
            self.accelerator.init_trackers(self.recipe, config=flat)

    def _can_fuse_adamw(self, named: list[tuple[str, torch.nn.Parameter]]) -> bool:
        """The fused AdamW kernel updates all parameters in one pass: 5× faster than the per-tensor
        (foreach) update for SmolLM2-135M on CPU (0.12 against 0.58 s/step, benchmarks in
        docs/benchmarks.md). It needs plain floating-point tensors on CPU or CUDA, so FSDP's and
        DeepSpeed's sharded parameters keep the default implementation."""
        sharded = self.accelerator.distributed_type.value in ("FSDP", "DEEPSPEED", "MEGATRON_LM")
        return not sharded and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for _, p in named)

    def prepare(
        self, model: torch.nn.Module, parameters: Iterable[tuple[str, torch.nn.Parameter]] | None = None, updates_per_step: int = 1
    ) -> torch.nn.Module:
        """Build AdamW over the trainable parameters (or `parameters`), the schedule (over
        max_steps × updates_per_step optimizer steps), and wrap all three for the current processes.
        Restores them from the checkpoint when resuming."""
        config = self.config
        named = [(n, p) for n, p in (parameters if parameters is not None else model.named_parameters()) if p.requires_grad]
        if not named:
            raise ConfigError("the model has no trainable parameters")
        groups = [
            {"params": [p for n, p in named if not no_decay(n, p)], "weight_decay": config.weight_decay},
            {"params": [p for n, p in named if no_decay(n, p)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(
            [g for g in groups if g["params"]], lr=config.lr, betas=(config.adam_beta1, config.adam_beta2), fused=self._can_fuse_adamw(named)
        )
        scheduler = get_scheduler(
            SCHEDULES[config.lr_scheduler],
            optimizer,
            num_warmup_steps=int(config.warmup_ratio * self.total_steps * updates_per_step),
            num_training_steps=self.total_steps * updates_per_step,
        )
        if config.gradient_checkpointing:
            count = enable_gradient_checkpointing(model)
            self.print(f"[{self.recipe}] gradient checkpointing on {count} model(s)" if count else f"[{self.recipe}] gradient_checkpointing: no Hugging Face model in this module; nothing to checkpoint")
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        if self.resume_dir is not None:
            self.accelerator.load_state(str(self.resume_dir))
            self.trainer_state = ckpt.read_trainer_state(self.resume_dir)
            self.step = int(self.trainer_state["step"])
            self.updates = int(self.trainer_state.get("updates", self.step))
            self.print(f"[{self.recipe}] resumed from {self.resume_dir} at step {self.step}")
        else:
            self.trainer_state = {}
        return self.model

    # ---- one optimizer step ---------------------------------------------------------------------
    def _all_finite(self, loss: torch.Tensor) -> bool:
        flag = torch.tensor([1.0 if bool(torch.isfinite(loss.detach()).all()) else 0.0], device=loss.device)
        return bool(self.accelerator.reduce(flag, reduction="sum").item() == self.accelerator.num_processes)

    def require_equal_micro_batches(self) -> None:
        """batch_size must split evenly over processes × accumulation steps: unequal micro-batches
        would weight examples unequally (the step averages micro-batch losses), and a remainder would be dropped."""
        world, accumulation = self.accelerator.num_processes, self.config.gradient_accumulation_steps
        if self.config.batch_size % (world * accumulation):
            raise ConfigError(
                f"batch_size={self.config.batch_size} must be divisible by processes × gradient_accumulation_steps = {world} × {accumulation}"
            )

    def optimizer_step(self, micro_batches: Sequence[Any], loss_fn: LossFn, weight_fn: WeightFn | None = None) -> dict[str, float]:
        """Accumulate gradients over this process's micro-batches, clip, and step.

        Each micro-batch's loss is a mean over some units — examples, or response tokens for a
        token-mean — and `weight_fn(micro_batch)` says how many it holds (default: every
        micro-batch weighs the same). The step minimises the mean over every unit of the global
        batch, all micro-batches of all processes:

            L = Σ_{p,i} w_{p,i} · L_{p,i} / W,   W = Σ_{p,i} w_{p,i}   (summed over processes)

        so micro-batch i backpropagates L_i · w_i · P / W, P processes (DDP averages gradients over
        them). 1 process or 2, 1 accumulation step or several: the same objective. Stats are the
        same weighted means. A NaN/inf loss on any process raises before backward, so no update happens.
        """
        assert self.model is not None and self.optimizer is not None, "call prepare() first"
        self.model.train()
        stats_sum: dict[str, float] = {}
        count = len(micro_batches)
        weights, total_weight = self._micro_batch_weights(micro_batches, weight_fn)
        world = self.accelerator.num_processes
        for index, micro_batch in enumerate(micro_batches):
            last = index == count - 1
            sync = contextlib.nullcontext() if last else self.accelerator.no_sync(self.model)
            with sync:
                with self.accelerator.autocast():
                    loss, stats = loss_fn(self.model, micro_batch)
                if not self._all_finite(loss):
                    shown = ", ".join(f"{k}={float(v):.4g}" for k, v in stats.items())
                    raise NonFiniteLossError(
                        f"[{self.recipe}] non-finite loss ({float(loss.detach()):.4g}) at step {self.step + 1}, "
                        f"micro-batch {index + 1}/{count} on some process ({shown}); stopped before the optimizer "
                        f"step. Checkpoints already written in {self.output_dir / ckpt.CHECKPOINT_DIR} are intact. "
                        "Lower lr, enable max_grad_norm, or check the data."
                    )
                self.accelerator.backward(loss * (weights[index] * world / total_weight))
            for key, value in {"loss": loss.detach(), **stats}.items():
                stats_sum[key] = stats_sum.get(key, 0.0) + float(value) * weights[index]
        grad_norm = None
        if self.config.max_grad_norm > 0:
            grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates += 1
        stats = {k: v / total_weight for k, v in self.sum_over_processes(stats_sum).items()}
        stats["lr"] = self.scheduler.get_last_lr()[0]
        if grad_norm is not None:
            stats["grad_norm"] = float(grad_norm)
        return stats

    def _micro_batch_weights(self, micro_batches: Sequence[Any], weight_fn: WeightFn | None) -> tuple[list[float], float]:
        """Each local micro-batch's weight and the total over all processes (one all-reduce).
        A step whose total is 0 (e.g. no response token anywhere) gets total 1: no gradient."""
        weights = [float(weight_fn(b)) if weight_fn is not None else 1.0 for b in micro_batches]
        if any(w < 0 for w in weights):
            raise ValueError(f"micro-batch weights must be ≥ 0, got {weights}")
        total = self.sum_over_processes({"weight": sum(weights)})["weight"]
        return weights, (total if total > 0 else 1.0)

    def sum_over_processes(self, values: dict[str, float]) -> dict[str, float]:
        return self._reduce_over_processes(values, "sum")

    def mean_over_processes(self, values: dict[str, float]) -> dict[str, float]:
        return self._reduce_over_processes(values, "mean")

    def _reduce_over_processes(self, values: dict[str, float], reduction: str) -> dict[str, float]:
        """One all-reduce of every value (float64, keys in a fixed order)."""
        if self.accelerator.num_processes == 1 or not values:
            return dict(values)
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.accelerator.device)
        reduced = self.accelerator.reduce(tensor, reduction=reduction)
        return {k: float(v) for k, v in zip(keys, reduced.tolist())}

    # ---- logging, checkpoints, the end -------------------------------------------------------
    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        step = self.step if step is None else step
        self.metrics.write(step, metrics)
        if _trackers(self.config.report_to):
            self.accelerator.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)

    def end_step(self) -> None:
        """The recipe finished one step (data batch or rollout): count it."""
        self.step += 1

    def close_step(self, metrics: dict[str, Any], bar: ProgressBar, progress_keys: tuple[str, ...], checkpoint_state: dict[str, Any] | None = None) -> None:
        """The end of every recipe's step, after `end_step()`: log the step's metrics (every
        `logging_steps` steps and always the last, so the final numbers are never dropped), advance
        the progress bar, and checkpoint when due (`should_save`), with `checkpoint_state` in the
        trainer state."""
        if self.step % self.config.logging_steps == 0 or self.step == self.total_steps:
            self.log(metrics)
        bar.advance(metrics, progress_keys)
        if self.should_save():
            self.save_checkpoint(checkpoint_state)

    def should_save(self) -> bool:
        """Every `save_steps` steps, and always after the last one (so every run can be resumed)."""
        every = self.config.save_steps
        return self.step == self.total_steps or (every > 0 and self.step % every == 0)

    def save_checkpoint(self, extra_state: dict[str, Any] | None = None) -> Path:
        """Model, optimizer, scheduler, every process's RNG, and the trainer state, written atomically."""
        staging = ckpt.staging_path(self.output_dir, self.step)
        if self.is_main:
            ckpt.fresh_staging(staging)  # never reuse one a killed write left (stray files would be published)
        self.accelerator.wait_for_everyone()
        # accelerate warns that it drops the tied output embedding when saving; it re-ties on load.
        with quiet_logger("accelerate"):
            self.accelerator.save_state(str(staging))
        self.accelerator.wait_for_everyone()
        final = staging.parent / ckpt.step_name(self.step)
        if self.is_main:
            state = {"step": self.step, "updates": self.updates, "recipe": self.recipe, **(extra_state or {})}
            ckpt.write_trainer_state(staging, state)
            final = ckpt.publish(staging, self.step)
            ckpt.prune(self.output_dir, self.config.save_total_limit)
        self.accelerator.wait_for_everyone()
        return final

    def unwrap(self, model: torch.nn.Module | None = None) -> torch.nn.Module:
        return self.accelerator.unwrap_model(model if model is not None else self.model)

    def finish(self) -> None:
        if _trackers(self.config.report_to):
            self.accelerator.end_training()
        self.accelerator.wait_for_everyone()
        self._release_run_lock()

    def progress(self, description: str) -> ProgressBar:
        return ProgressBar(description, total=self.total_steps, completed=self.step, enabled=self.is_main and self.config.progress)


@contextlib.contextmanager
def quiet_logger(name: str):
    import logging

    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def rng_snapshot() -> dict[str, Any]:
    """Python, NumPy and torch RNG states (for tests and recipes that fork randomness)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.random.get_rng_state()}


def wall_clock() -> float:
    return time.perf_counter()
