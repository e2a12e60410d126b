"""The training loop both stages share, on accelerate: AdamW with linear warm-up and decay, gradient
accumulation, optional gradient checkpointing, bf16 autocast on GPU, full-parameter or LoRA (peft),
seeded data order, and resumable checkpoints.

Multi-GPU runs go through accelerate (``accelerate launch -m llara_bench.harness.cli adapt ...``): each process takes
every world-size-th micro-batch of the same seeded order.

A checkpoint (``<workdir>/checkpoint``) is accelerate's state, the model in safetensors with the optimizer,
scheduler and RNG states beside it, plus ``trainer_state.json`` (step, history, and the hash of the
settings it belongs to). It is written to a scratch folder and renamed, so an interrupted save leaves the
previous checkpoint whole; a run with the same settings resumes from it, one with other settings refuses
it rather than mixing the two.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from llara_bench.models.errors import ConfigError
from llara_bench.models.files import move_into_place, scratch_beside

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    r: int = 64
    alpha: int = 16
    dropout: float = 0.1
    targets: tuple[str, ...] = LORA_TARGETS  # LLaRA's fine-tuning defaults (all projections)


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 200  # optimizer steps
    batch_size: int = 16  # items per micro-batch (per process)
    grad_accum: int = 1
    lr: float = 1e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    seed: int = 0
    lora: LoraSettings | None = None  # None: full-parameter
    gradient_checkpointing: bool = False
    bf16: bool | None = None  # None: bf16 autocast when on GPU
    save_every: int = 0  # steps between checkpoints (0: at the end only)
    log_every: int = 10
    monitor_every: int = 50  # steps between collapse checks (0: never)

    def key(self, extra: dict[str, Any]) -> str:
        blob = json.dumps({"settings": asdict(self), **extra}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per logged step
    resumed_from: int = 0
    seconds: float = 0.0


def apply_lora(model, lora: LoraSettings, trainable_token_ids: Sequence[int] = ()):
    """Wrap ``model`` with LoRA adapters; new token rows (e.g. <s1>..<s16>) stay trainable."""
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in lora.targets if t in present]
    if not targets:
        raise ConfigError(f"LoRA targets {list(lora.targets)} match no module of the model")
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                        trainable_token_indices=list(trainable_token_ids) or None)
    return get_peft_model(model, config)


def micro_batches(n_items: int, batch_size: int, seed: int, start: int, rank: int = 0, world: int = 1):
    """Item indices of micro-batch ``start``, ``start + 1``, ...: a seeded permutation per epoch, read as
    one endless stream (so a resumed run continues exactly where it stopped)."""
    import numpy as np

    if n_items < 1:
        raise ConfigError("no training items")
    orders: dict[int, Any] = {}
    m = start
    while True:
        first = (m * world + rank) * batch_size
        out = []
        for pos in range(first, first + batch_size):
            epoch, offset = divmod(pos, n_items)
            if epoch not in orders:
                orders = {epoch: np.random.default_rng([seed, epoch]).permutation(n_items)}
            out.append(int(orders[epoch][offset]))
        yield out
        m += 1


def train(model, n_items: int, make_batch: Callable[[list[int]], Any],
          loss_fn: Callable[[Any, Any], tuple[Any, dict]], settings: TrainSettings, workdir: Path,
          *, key_extra: dict[str, Any] | None = None, monitor: Callable[[Any], dict] | None = None,
          on_log: Callable[[int, dict], None] | None = None) -> tuple[Any, TrainResult]:
    """Train ``model`` for ``settings.steps`` optimizer steps; returns the unwrapped model and the log.

    ``make_batch(indices)`` builds a batch of items; ``loss_fn(model, batch)`` returns (loss, logs);
    ``monitor(model)`` (every ``monitor_every`` steps and at the end) returns extra figures to log, such as
    the spread of the embeddings across documents."""
    import time

    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_linear_schedule_with_warmup

    set_seed(settings.seed)
    use_bf16 = settings.bf16 if settings.bf16 is not None else torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision="bf16" if use_bf16 else "no",
                              gradient_accumulation_steps=settings.grad_accum)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(settings.warmup_ratio * settings.steps),
                                                settings.steps)
    # the scheduler is stepped here once per optimizer step (accelerate's wrapper would step it once per
    # process), and checkpointed with the rest
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    workdir.mkdir(parents=True, exist_ok=True)
    key = settings.key(key_extra or {})
    checkpoint = workdir / "checkpoint"
    result = TrainResult()
    step = 0
    if (checkpoint / "trainer_state.json").is_file():
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        if state["key"] != key:
            raise ConfigError(f"{checkpoint} belongs to other settings (key {state['key']}, this run {key}); "
                              "use another output folder or delete it")
        accelerator.load_state(str(checkpoint))
        step, result.history, result.resumed_from = state["step"], state["history"], state["step"]

    def save_checkpoint() -> None:
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            return
        with scratch_beside(checkpoint) as scratch:
            accelerator.save_state(str(scratch), safe_serialization=True)
            (scratch / "trainer_state.json").write_text(json.dumps({"key": key, "step": step,
                                                                    "history": result.history}))
            move_into_place(scratch, checkpoint, existing="replace")

    start = time.perf_counter()
    stream = micro_batches(n_items, settings.batch_size, settings.seed, step * settings.grad_accum,
                           accelerator.process_index, accelerator.num_processes)
    model.train()
    window: list[dict] = []
    while step < settings.steps:
        for _ in range(settings.grad_accum):
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    loss, logs = loss_fn(model, make_batch(next(stream)))
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, 1.0)
                optimizer.step()  # (accelerate skips it between accumulation boundaries)
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            window.append(logs)
        step += 1
        if step % settings.log_every == 0 or step == settings.steps or \
                (settings.monitor_every and step % settings.monitor_every == 0):
            row = {"step": step, "lr": scheduler.get_last_lr()[0],
                   **{k: sum(w[k] for w in window) / len(window) for k in window[0]}}
            window = []
            if monitor and (step == settings.steps or (settings.monitor_every and step % settings.monitor_every == 0)):
                model.eval()
                with torch.no_grad():
                    row |= monitor(accelerator.unwrap_model(model))
                model.train()
            result.history.append(row)
            if on_log and accelerator.is_main_process:
                on_log(step, row)
        if settings.save_every and step % settings.save_every == 0 and step < settings.steps:
            save_checkpoint()
    save_checkpoint()
    result.seconds = time.perf_counter() - start
    model.eval()
    return accelerator.unwrap_model(model), result


def embedding_spread(first, second=None) -> dict:
    """How spread out L2-normalised embeddings are: the mean cosine between different rows (near 1:
    collapsed to one direction) and, with ``second``, the mean cosine of matched rows minus that of
    mismatched ones (how much a row is closer to its own pair than to others')."""
    import torch

    n = first.shape[0]
    sims = first @ first.T
    off = sims[~torch.eye(n, dtype=torch.bool, device=sims.device)]
    out = {"mean_cos": float(off.mean())}
    if second is not None:
        cross = first @ second.T
        matched = cross.diag().mean()
        mismatched = cross[~torch.eye(n, dtype=torch.bool, device=sims.device)].mean()
        out["pair_margin"] = float(matched - mismatched)
    return out
