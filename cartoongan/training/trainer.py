"""The CartoonGAN training loop: initialization phase, then adversarial phase.

Initialization (the paper, section 3.3): the generator learns to reconstruct
photos under the content loss alone, so the adversarial phase starts from a
generator that already keeps content.

Adversarial phase: the discriminator sees cartoons as real, and both generated
images and edge-smoothed cartoons as fake, which teaches it that clear edges
make a cartoon. The generator minimises adversarial + content_weight x content
loss (L1 between VGG features of the photo and of its cartoon). Two optional
terms, off by default (the paper has none): tv_weight x total variation
(flat colour regions), line_weight x line loss (dark ink on the photo's
contours, where `PhotoLines` finds them) and color_weight x colour loss (the
photo's coarse colours, so that inking does not darken the whole image).

Runs on one CPU or GPU, or on many through `torchrun` (DDP). Checkpoints hold
everything needed to continue exactly: `--resume` reproduces the parameters of
an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from cartoongan import __version__
from cartoongan._io import atomic_write_bytes
from cartoongan.errors import CheckpointError, InvalidInput, TrainingDiverged
from cartoongan.training import checkpoint
from cartoongan.training.config import TrainConfig, dump_yaml, from_dict
from cartoongan.training.data import (
    EdgeSmoothing,
    PhotoLines,
    UnpairedDataset,
    atomic_write_image,
    center_crop,
    fit_for_crop,
    list_images,
    prepare_smoothed,
    read_rgb,
    readable_images,
    split_holdout,
    to_tensor,
)
from cartoongan.training.distributed import Distributed, unwrap
from cartoongan.training.networks import PatchDiscriminator, build_generator
from cartoongan.training.vgg import build_vgg, resolve_backbone

log = logging.getLogger(__name__)


def _ignore_stop_signals(_worker_id: int) -> None:
    # Ctrl-C or a SIGTERM sent to the whole process group is handled by the main process, which
    # finishes the step and saves; a worker dying first would abort that step instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# --------------------------------------------------------------------------- losses


def gan_loss(kind: str, logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


def content_loss(vgg: nn.Module, fake: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        target = vgg(photo)
    return F.l1_loss(vgg(fake), target)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels: small for flat colour regions, sharp edges cost little."""
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean()
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return dx + dy


def color_loss(image: torch.Tensor, photo: torch.Tensor, block: int = 8) -> torch.Tensor:
    """L1 between the block x block mean colours of the image and of the photo: keeps the photo's colours and
    brightness at a coarse scale (no colour cast, no global darkening) and leaves edges and textures free."""
    return F.l1_loss(F.avg_pool2d(image, block), F.avg_pool2d(photo, block))


# How dark an inked line must be, in the generator's [-1, 1] range (about 50 of 255).
LINE_DARKNESS = -0.6


def line_loss(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How much brighter than an ink line the image is on the mask's pixels (darker costs nothing)."""
    excess = F.relu(image - LINE_DARKNESS).mean(dim=1, keepdim=True)
    return (excess * mask).sum() / mask.sum().clamp(min=1.0)


# --------------------------------------------------------------------------- trainer


def _load_generator_weights(generator: nn.Module, path: str, arch: str) -> None:
    """Start from another run's generator (fine-tuning, or an adversarial phase with other losses)."""
    tensors, meta = checkpoint.load(path)
    source_arch = meta.get("arch") or meta.get("config", {}).get("arch")
    if source_arch != arch:
        raise CheckpointError(f"init_from {path} holds a {source_arch!r} generator, but this run trains {arch!r}")
    state = {k.removeprefix("generator."): v for k, v in tensors.items() if k.startswith("generator.")}
    missing, unexpected = generator.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"init_from {path}: generator weights do not fit (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")  # fmt: skip


@dataclass
class Progress:
    phase: str = "init"
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained
    step: int = 0  # optimizer steps over the whole run


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: str | Path, resume: bool = False, device: str = "auto"):
        self.dist = Distributed.from_env()
        self.device = self._pick_device(device)
        if self.dist.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.run_dir = Path(run_dir)
        config = config.validate()
        backbone, weights = resolve_backbone(config.content_backbone, config.vgg_weights)
        config = config.replace(content_backbone=backbone, vgg_weights=weights)
        resume_state = None
        if resume:
            resume_state = checkpoint.load(self.run_dir / "checkpoints" / "last.safetensors")
            saved = from_dict(resume_state[1]["config"])
            changed = sorted(k for k, v in config.to_dict().items() if saved.to_dict()[k] != v)
            if changed:
                raise CheckpointError(
                    f"--resume continues the run with its saved config; these fields differ from it: {changed}"
                )
            config = saved
        elif (self.run_dir / "checkpoints" / "last.safetensors").exists():
            raise InvalidInput(f"{self.run_dir} already holds a run; pass --resume to continue it, or another --out")
        self.config = config
        torch.manual_seed(config.seed)

        self._build_data()
        self._build_models()
        self.progress = Progress()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._start_phase("init" if config.init_epochs > 0 else "adversarial")
        if resume_state is not None:
            self._restore(*resume_state)
        elif self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_yaml(config, self.run_dir / "config.yaml")
        amp = config.amp and self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else nullcontext

    # ---- setup

    def _pick_device(self, device: str) -> torch.device:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda":
            if not torch.cuda.is_available():
                raise InvalidInput("--device cuda was asked for, but torch sees no CUDA GPU")
            torch.cuda.set_device(self.dist.local_rank)
            return torch.device("cuda", self.dist.local_rank)
        if self.dist.enabled:  # one process per rank shares the cores
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
        return torch.device(device)

    def _build_data(self) -> None:
        c = self.config
        photos, holdout = split_holdout(readable_images(list_images(c.photos), "photo"), c.holdout_fraction)
        if holdout and self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            listing = "".join(f"{p}\n" for p in holdout)
            atomic_write_bytes(self.run_dir / "holdout.txt", listing.encode())
        cartoons = list_images(c.cartoons)
        smoothing = EdgeSmoothing(c.canny_low, c.canny_high, c.edge_dilate, c.edge_blur)
        cache = self.run_dir / "cache" / "edge_smoothed"
        if self.dist.main:  # rank 0 fills the cache, the others then only read it
            pairs = prepare_smoothed(cartoons, cache, smoothing)
        self.dist.barrier()
        if not self.dist.main:
            pairs = prepare_smoothed(cartoons, cache, smoothing)
        lines = None  # contour masks are traced in the loader's workers, only for a line loss
        if c.line_weight > 0:
            lines = PhotoLines(c.line_blur, c.line_canny_low, c.line_canny_high, c.line_width)
        self.dataset = UnpairedDataset(photos, pairs, c.crop_size, c.short_side, c.seed, lines)
        self.steps_per_epoch = len(photos) // (c.batch_size * self.dist.world)
        if self.steps_per_epoch == 0:
            raise InvalidInput(
                f"{len(photos)} readable photo(s) cannot fill one batch of {c.batch_size} on {self.dist.world} "
                f"process(es); add photos or lower batch_size"
            )
        # sample grids show held-out photos when there are any: what the model does on unseen images
        sample_paths = (holdout or photos)[: c.sample_count]
        samples = [fit_for_crop(read_rgb(p), c.crop_size, c.short_side) for p in sample_paths]
        self.sample_photos = torch.stack([to_tensor(center_crop(s, c.crop_size)) for s in samples])

    def _build_models(self) -> None:
        c = self.config
        self.vgg = build_vgg(c.content_backbone, c.vgg_weights, random_init=c.vgg_weights == "random").to(self.device)
        generator = build_generator(c.arch)
        if c.init_from:
            _load_generator_weights(generator, c.init_from, c.arch)
        discriminator = PatchDiscriminator(c.d_channels, c.d_norm, c.d_spectral_norm)
        if self.dist.enabled and self.device.type == "cuda":
            # PyTorch's SyncBatchNorm runs on GPUs only; on CPU each rank keeps its own
            # batch statistics and DDP broadcasts rank 0's running averages.
            generator = nn.SyncBatchNorm.convert_sync_batchnorm(generator)
            discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(discriminator)
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.generator = nn.parallel.DistributedDataParallel(self.generator, device_ids=ids)
            self.discriminator = nn.parallel.DistributedDataParallel(self.discriminator, device_ids=ids)

    def _start_phase(self, phase: str) -> None:
        c = self.config
        g_params = self.generator.parameters()
        if phase == "init":
            self.optimizers = {"g": torch.optim.AdamW(g_params, c.init_lr, c.betas, weight_decay=c.weight_decay)}
        else:
            self.optimizers = {
                "g": torch.optim.AdamW(g_params, c.lr_g, c.betas, weight_decay=c.weight_decay),
                "d": torch.optim.AdamW(self.discriminator.parameters(), c.lr_d, c.betas, weight_decay=c.weight_decay),
            }
        self.progress.phase = phase
        self.progress.epoch = 0
        self.progress.batch_in_epoch = 0

    def _phase_epochs(self, phase: str) -> int:
        return self.config.init_epochs if phase == "init" else self.config.adv_epochs

    @property
    def total_steps(self) -> int:
        return (self.config.init_epochs + self.config.adv_epochs) * self.steps_per_epoch

    # ---- checkpoints

    def _state(self) -> tuple[dict, dict]:
        tensors = {f"generator.{k}": v for k, v in unwrap(self.generator).state_dict().items()}
        tensors.update({f"discriminator.{k}": v for k, v in unwrap(self.discriminator).state_dict().items()})
        groups = {}
        for name, opt in self.optimizers.items():
            flat, groups[name] = checkpoint.flatten_optimizer(f"optim.{name}", opt.state_dict())
            tensors.update(flat)
        tensors["rng.torch"] = torch.get_rng_state()
        p = self.progress
        meta = {
            "config": self.config.to_dict(),
            "config_hash": self.config.hash(),
            "arch": self.config.arch,
            "phase": p.phase,
            "epoch": p.epoch,
            "batch_in_epoch": p.batch_in_epoch,
            "step": p.step,
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.dist.world,
            "param_groups": groups,
            "package_version": __version__,
        }
        return tensors, meta

    def save_checkpoint(self) -> Path | None:
        if not self.dist.main:
            return None
        tensors, meta = self._state()
        folder = self.run_dir / "checkpoints"
        numbered = folder / f"step_{self.progress.step:08d}.safetensors"
        checkpoint.save(numbered, tensors, meta)
        checkpoint.save(folder / "last.safetensors", tensors, meta)
        keep = self.config.keep_checkpoints
        if keep > 0:
            for old in sorted(folder.glob("step_*.safetensors"))[:-keep]:
                old.unlink(missing_ok=True)
                old.with_suffix(".json").unlink(missing_ok=True)
        return numbered

    def _restore(self, tensors: dict, meta: dict) -> None:
        if meta["world_size"] != self.dist.world:
            raise CheckpointError(
                f"this run was trained on {meta['world_size']} process(es); resume it on the same number "
                f"(got {self.dist.world}) so the data order stays the same"
            )
        for prefix, model in (("generator.", self.generator), ("discriminator.", self.discriminator)):
            state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            unwrap(model).load_state_dict(state)
        self._start_phase(meta["phase"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(checkpoint.unflatten_optimizer(f"optim.{name}", tensors, meta["param_groups"][name]))
        torch.set_rng_state(tensors["rng.torch"])
        self.progress = Progress(meta["phase"], meta["epoch"], meta["batch_in_epoch"], meta["step"])
        if self.dist.main:
            self._truncate_metrics(meta["step"])

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines written after the checkpoint we resume from (they will be written again)."""
        path = self.run_dir / "metrics.jsonl"
        if path.exists():
            lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
            atomic_write_bytes(path, "".join(ln + "\n" for ln in lines).encode())

    # ---- steps

    def _init_step(self, photo: torch.Tensor) -> dict[str, float]:
        with self.autocast():
            fake = self.generator(photo)
            loss = content_loss(self.vgg, fake, photo)
        opt = self.optimizers["g"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"content": loss.item()}

    def _adversarial_step(
        self, photo: torch.Tensor, cartoon: torch.Tensor, smoothed: torch.Tensor, lines: torch.Tensor
    ) -> dict:
        """One D step and one G step; `lines` is the photos' contour mask (empty without a line loss)."""
        c = self.config
        with self.autocast():
            fake = self.generator(photo)
            # Discriminator: cartoons are real; edge-smoothed cartoons and generated images are fake.
            # One forward over the concatenation (per-sample norms do not mix the three).
            d_real, d_smooth, d_fake = self.discriminator(torch.cat([cartoon, smoothed, fake.detach()])).chunk(3)
            loss_d = gan_loss(c.gan_loss, d_real, True) + gan_loss(c.gan_loss, d_smooth, False)
            loss_d = loss_d + gan_loss(c.gan_loss, d_fake, False)
        opt_d = self.optimizers["d"]
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        # Generator: fool the (unwrapped, frozen for this step) discriminator and keep the content.
        plain_d = unwrap(self.discriminator)
        plain_d.requires_grad_(False)
        with self.autocast():
            loss_adv = gan_loss(c.gan_loss, plain_d(fake), True)
            loss_content = content_loss(self.vgg, fake, photo)
            loss_tv = total_variation(fake)
            loss_g = loss_adv + c.content_weight * loss_content + c.tv_weight * loss_tv
            losses = {"g_adv": loss_adv, "content": loss_content, "tv": loss_tv}
            if c.color_weight > 0:
                losses["color"] = color_loss(fake, photo)
                loss_g = loss_g + c.color_weight * losses["color"]
            if c.line_weight > 0:
                losses["lines"] = line_loss(fake, lines)
                loss_g = loss_g + c.line_weight * losses["lines"]
        opt_g = self.optimizers["g"]
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        plain_d.requires_grad_(True)
        return {"d": loss_d.item(), **{name: value.item() for name, value in losses.items()}}

    # ---- loop

    def _batches(self):
        """(batch) tuples of the current epoch, starting after the batches already trained."""
        p, c = self.progress, self.config
        self.dataset.epoch = p.epoch + (1_000_000 if p.phase == "adversarial" else 0)
        sampler = DistributedSampler(
            self.dataset, self.dist.world, self.dist.rank, shuffle=True, seed=c.seed, drop_last=True
        )
        sampler.set_epoch(self.dataset.epoch)
        indices = list(sampler)[: self.steps_per_epoch * c.batch_size][p.batch_in_epoch * c.batch_size :]
        return DataLoader(
            self.dataset,
            batch_size=c.batch_size,
            sampler=indices,
            num_workers=c.num_workers,
            worker_init_fn=_ignore_stop_signals if c.num_workers else None,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
        )

    def fit(self, max_steps: int | None = None, max_minutes: float | None = None, progress_bar: bool = True) -> Path:
        """Train until the schedule ends or a budget (steps / minutes of this call) or a signal stops it."""
        c, p = self.config, self.progress
        if (max_steps is not None and max_steps < 1) or (max_minutes is not None and max_minutes <= 0):
            raise InvalidInput(f"--max-steps must be >= 1 and --max-minutes > 0, got {max_steps} and {max_minutes}")
        stop_requested = threading.Event()
        handlers = self._install_signal_handlers(stop_requested)
        bar = None
        if progress_bar and self.dist.main:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=p.step, unit="step", dynamic_ncols=True)
        start, done_here = time.monotonic(), 0
        last_saved = p.step if p.step > 0 else -1
        try:
            while p.phase != "done":
                if p.epoch >= self._phase_epochs(p.phase):
                    if p.phase == "init":
                        self._start_phase("adversarial")
                        continue
                    p.phase = "done"
                    break
                for photo, cartoon, smoothed, lines in self._batches():
                    step_start = time.monotonic()
                    photo = photo.to(self.device, non_blocking=True)
                    if p.phase == "init":
                        losses = self._init_step(photo)
                    else:
                        cartoon = cartoon.to(self.device, non_blocking=True)
                        smoothed = smoothed.to(self.device, non_blocking=True)
                        lines = lines.to(self.device, non_blocking=True)
                        losses = self._adversarial_step(photo, cartoon, smoothed, lines)
                    p.step += 1
                    p.batch_in_epoch += 1
                    done_here += 1
                    self._after_step(losses, time.monotonic() - step_start, bar)
                    if p.step % c.checkpoint_every == 0:
                        self.save_checkpoint()
                        last_saved = p.step
                    budget_spent = (max_steps is not None and done_here >= max_steps) or (
                        max_minutes is not None and time.monotonic() - start >= 60 * max_minutes
                    )
                    if self.dist.any(budget_spent or stop_requested.is_set(), self.device):
                        raise _Stop
                p.epoch += 1
                p.batch_in_epoch = 0
        except _Stop:
            pass
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            if bar is not None:
                bar.close()
        if p.step != last_saved:
            self.save_checkpoint()
            self.write_samples()
        if stop_requested.is_set() and self.dist.main:
            log.warning("stopped by a signal at step %d; continue with --resume", p.step)
        return self.run_dir / "checkpoints" / "last.safetensors"

    def _after_step(self, losses: dict[str, float], seconds: float, bar) -> None:
        c, p = self.config, self.progress
        if not all(math.isfinite(v) for v in losses.values()):
            raise TrainingDiverged(f"non-finite loss at step {p.step}: {losses}; the last checkpoint is kept")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(phase=p.phase, **{k: f"{v:.4f}" for k, v in losses.items()})
        if self.dist.main and (p.step % c.log_every == 0 or p.step == 1):
            record = {"step": p.step, "phase": p.phase, "epoch": p.epoch, "sec_per_step": round(seconds, 4), **losses}
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        if p.step % c.sample_every == 0:
            self.write_samples()

    @torch.no_grad()
    def write_samples(self) -> Path | None:
        """A PNG grid, one row per sample photo: input | output."""
        if not self.dist.main:
            return None
        generator = unwrap(self.generator)
        was_training = generator.training
        generator.eval()
        out = generator(self.sample_photos.to(self.device)).float().cpu()
        generator.train(was_training)
        rows = torch.cat([self.sample_photos, out], dim=3)  # side by side
        grid = torch.cat(list(rows), dim=1)  # stacked
        image = ((grid.permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
        path = self.run_dir / "samples" / f"step_{self.progress.step:08d}.png"
        atomic_write_image(path, np.ascontiguousarray(image))
        return path

    def _install_signal_handlers(self, event: threading.Event) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, lambda *_: event.set())
        return previous

    def close(self) -> None:
        if self.dist.enabled and dist.is_initialized():
            dist.destroy_process_group()


class _Stop(Exception):
    """Internal: leave the loop at a step boundary."""
