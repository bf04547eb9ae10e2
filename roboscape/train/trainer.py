"""The training loop: HF Accelerate, resumable checkpoints, CSV + TensorBoard metrics, progress bar.

Runs as one CPU process (``python ...``) or under ``accelerate launch`` with several processes or
GPUs (bf16 on GPU by default). Every ``checkpoint_every`` steps it saves, atomically, everything a
resumed run needs to continue exactly where it stopped: model, optimizer, scheduler and RNG states
(``Accelerator.save_state``) and the step, from which the data position follows (the sample
stream is a pure function of the seed and the number of samples consumed).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16  # per process
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    log_every: int = 10
    seed: int = 0
    num_workers: int = 0
    mixed_precision: str = "auto"  # auto: bf16 on GPU, fp32 on CPU; or "no", "bf16", "fp16"


class SampleStream(Sampler[int]):
    """An endless, seeded stream of dataset indices (a new permutation per epoch), starting at
    sample ``start`` and taking every ``world``-th sample from offset ``rank``."""

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        if n == 0:
            raise ValueError("the training dataset is empty")
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world

    def __iter__(self) -> Iterator[int]:
        pos = self.start + self.rank
        perm, epoch = None, -1
        while True:
            e, i = divmod(pos, self.n)
            if e != epoch:
                epoch = e
                perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + e))
            yield int(perm[i])
            pos += self.world


def _lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


class Trainer:
    """Trains ``model`` on ``dataset`` with ``compute_loss(model, batch) -> {"loss": ..., ...}``."""

    def __init__(
        self,
        model: nn.Module | Callable[[], nn.Module],
        dataset: Dataset,
        compute_loss: Callable[[nn.Module, dict], dict[str, torch.Tensor]],
        cfg: TrainConfig,
        out_dir: str | Path,
        collate_fn: Callable | None = None,
        signature: dict | None = None,
    ):
        """``model``: the model, or a function that builds it once ``cfg.seed`` is set (so the
        same config gives the same initial weights, whatever the process drew before).
        ``signature``: what else defines this run (model config, data); checkpoints written
        under another signature or train config are set aside instead of resumed."""
        self.cfg = cfg
        self.signature = {"train": asdict(cfg), "dataset_size": len(dataset), **(signature or {})}
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        mp = cfg.mixed_precision
        if mp == "auto":
            mp = "bf16" if torch.cuda.is_available() else "no"
        self.accelerator = Accelerator(mixed_precision=mp)
        set_seed(cfg.seed)
        if not isinstance(model, nn.Module):
            model = model()
            set_seed(cfg.seed)  # the training stream does not depend on what the initialisation drew
        self.dataset, self.collate_fn, self.compute_loss = dataset, collate_fn, compute_loss
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            betas=(0.9, 0.95),
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.warmup_steps, cfg.steps))
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.step = 0
        self.start_step = 0  # the step the last train() call resumed from

    # ------------------------------------------------------------------ checkpoints
    def latest_checkpoint(self) -> Path | None:
        done = sorted(self.ckpt_dir.glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
        return done[-1] if done else None

    def save_checkpoint(self) -> None:
        acc = self.accelerator
        final = self.ckpt_dir / f"step_{self.step:08d}"
        tmp = self.ckpt_dir / f".tmp_step_{self.step:08d}"
        if acc.is_main_process and tmp.exists():
            shutil.rmtree(tmp)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        acc.wait_for_everyone()  # every rank has written its state files into tmp before it is renamed
        if acc.is_main_process:
            (tmp / "trainer_state.json").write_text(json.dumps({"step": self.step, "signature": self.signature}))
            tmp.rename(final)  # a checkpoint exists only once complete
            for old in sorted(self.ckpt_dir.glob("step_*"))[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old)
        acc.wait_for_everyone()

    def resume(self) -> bool:
        ckpt = self.latest_checkpoint()
        if ckpt is None:
            return False
        state = json.loads((ckpt / "trainer_state.json").read_text())
        if state.get("signature") != json.loads(json.dumps(self.signature)):
            self.accelerator.wait_for_everyone()
            if self.accelerator.is_main_process:
                stale = self.ckpt_dir.with_name(f"checkpoints.stale-{int(time.time())}")
                self.ckpt_dir.rename(stale)
                print(
                    f"checkpoints in {self.ckpt_dir} belong to another configuration: moved to {stale.name}, "
                    "starting afresh"
                )
            self.accelerator.wait_for_everyone()
            return False
        self.accelerator.load_state(str(ckpt))
        self.step = state["step"]
        return True

    # ------------------------------------------------------------------ metrics
    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.csv"

    def _truncate_metrics(self) -> None:
        """Drop rows logged past the step training restarts from: the log matches the weights."""
        path = self.metrics_path
        if not path.exists():
            return
        with open(path) as fh:
            reader = csv.DictReader(fh)
            fields, rows = reader.fieldnames, [r for r in reader if int(r["step"]) <= self.step]
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)

    def _log(self, rows: list[dict], writer) -> None:
        path = self.metrics_path
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            if new:
                w.writeheader()
            w.writerows(rows)
        for r in rows:
            for k, v in r.items():
                if k != "step":
                    writer.add_scalar(k, v, r["step"])

    # ------------------------------------------------------------------ loop
    def train(self, stop_after: int | None = None) -> dict[str, float]:
        """Train up to ``cfg.steps`` (resuming from the latest checkpoint); ``stop_after`` ends
        this call early after that many steps, as an interruption would. Returns the last step's
        losses (those logged at the end when the run had already finished)."""
        from torch.utils.tensorboard import SummaryWriter

        acc, cfg = self.accelerator, self.cfg
        resumed = self.resume()
        self.start_step = self.step
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if acc.is_main_process:
            self._truncate_metrics()
        world = acc.num_processes
        sampler = SampleStream(
            len(self.dataset), cfg.seed, start=self.step * cfg.batch_size * world, rank=acc.process_index, world=world
        )
        # Its own generator: creating the loader's iterator must not draw from the global RNG,
        # whose state the checkpoint restores (dropout and friends must replay identically).
        loader = DataLoader(
            self.dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=cfg.num_workers,
            collate_fn=self.collate_fn,
            drop_last=True,
            generator=torch.Generator().manual_seed(cfg.seed + self.step),
        )
        writer = SummaryWriter(str(self.out_dir / "tensorboard")) if acc.is_main_process else None
        bar = tqdm(
            total=cfg.steps, initial=self.step, disable=not acc.is_main_process, desc=self.out_dir.name, unit="step"
        )
        if resumed:
            bar.write(f"resumed from step {self.step}")
        pending: list[dict] = []
        last: dict[str, float] = {}
        self.model.train()
        batches = iter(loader)
        steps_this_call = 0
        while self.step < cfg.steps and (stop_after is None or steps_this_call < stop_after):
            batch = _to_device(next(batches), acc.device)
            with acc.autocast():
                losses = self.compute_loss(self.model, batch)
            self.optimizer.zero_grad(set_to_none=True)
            acc.backward(losses["loss"])
            if cfg.grad_clip:
                acc.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            steps_this_call += 1
            last = {k: float(acc.reduce(v.detach().float(), reduction="mean")) for k, v in losses.items()}
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                pending.append({"step": self.step, "lr": self.scheduler.get_last_lr()[0], **last})
                bar.set_postfix(loss=f"{last['loss']:.4f}")
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                if acc.is_main_process and pending:
                    self._log(pending, writer)
                    pending = []
                self.save_checkpoint()
        if acc.is_main_process and pending:
            self._log(pending, writer)
        bar.close()
        if writer is not None:
            writer.close()
        if not steps_this_call and self.step == cfg.steps:
            last = self.logged_metrics(self.step)  # a finished run restarted: what it logged last
        return last

    def logged_metrics(self, step: int) -> dict[str, float]:
        """The losses logged at ``step`` (empty if none were)."""
        if not self.metrics_path.exists():
            return {}
        with open(self.metrics_path) as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["step"]) == step]
        return {k: float(v) for k, v in rows[-1].items() if k not in ("step", "lr") and v != ""} if rows else {}

    def unwrapped_model(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch
