import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from cartoongan.cli import main
from cartoongan.errors import CheckpointError, InvalidInput
from cartoongan.training import checkpoint
from cartoongan.training.data import PhotoLines
from cartoongan.training.trainer import (
    LINE_DARKNESS,
    Trainer,
    color_loss,
    line_loss,
    total_variation,
)


def params(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.generator.state_dict().items()}


def run(config, run_dir, steps, resume=False) -> Trainer:
    trainer = Trainer(config, run_dir, resume=resume)
    trainer.fit(max_steps=steps, progress_bar=False)
    return trainer


def test_init_step_and_adversarial_step_give_finite_losses_and_move_parameters(tiny_config, tmp_path):
    trainer = Trainer(tiny_config, tmp_path / "run")
    photo, cartoon, smoothed, lines = next(iter(trainer._batches()))

    before = params(trainer)
    losses = trainer._init_step(photo)
    assert set(losses) == {"content"} and all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(before[k], v) for k, v in params(trainer).items())

    trainer._start_phase("adversarial")
    g_before = params(trainer)
    d_before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    losses = trainer._adversarial_step(photo, cartoon, smoothed, lines)
    assert set(losses) == {"d", "g_adv", "content", "tv"}
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    assert any(not torch.equal(g_before[k], v) for k, v in params(trainer).items())
    assert any(not torch.equal(d_before[k], v) for k, v in trainer.discriminator.state_dict().items())
    assert all(p.requires_grad for p in trainer.discriminator.parameters())  # unfrozen after the G step


def test_total_variation_is_zero_on_flat_images_and_counts_each_step_once():
    flat = torch.full((2, 3, 8, 8), 0.3)
    assert total_variation(flat).item() == 0.0
    halves = flat.clone()
    halves[:, :, :, 4:] = -0.7  # one vertical edge of height 1.0: 1 of 7 column steps per row
    assert total_variation(halves).item() == pytest.approx(1.0 / 7)
    noisy = flat + 0.1 * torch.randn_like(flat)
    assert total_variation(noisy) > total_variation(flat)


def test_tv_weight_flattens_the_output(tiny_config, tmp_path):
    # No content loss and a TV weight far above the adversarial term: a few steps make the output flatter.
    config = tiny_config.replace(content_weight=0.0, tv_weight=50.0, lr_g=1e-3)
    trainer = Trainer(config, tmp_path / "run")
    trainer._start_phase("adversarial")
    photo, cartoon, smoothed, lines = next(iter(trainer._batches()))
    trainer.generator.eval()
    with torch.no_grad():
        before = total_variation(trainer.generator(photo)).item()
    trainer.generator.train()
    for _ in range(5):
        trainer._adversarial_step(photo, cartoon, smoothed, lines)
    trainer.generator.eval()
    with torch.no_grad():
        after = total_variation(trainer.generator(photo)).item()
    assert after < before


def two_regions(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """RGB: a noisy, textured dark left half and a flat bright right half; one contour at the middle."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 200, np.int16)
    image[:, : width // 2] = 60 + rng.integers(-25, 26, (height, width // 2, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def test_photo_lines_trace_region_borders_and_skip_texture():
    mask = PhotoLines()(two_regions())
    columns = np.nonzero(mask.any(axis=0))[0]
    assert mask.sum() >= 64  # the contour runs the whole height
    assert columns.min() >= 29 and columns.max() <= 34  # and nowhere in the noisy texture
    assert not PhotoLines()(np.full((32, 32, 3), 128, np.uint8)).any()
    wide = PhotoLines(width=3)(two_regions())
    assert (wide & mask).sum() == mask.sum() and wide.sum() >= 2.5 * mask.sum()


def test_line_loss_counts_only_bright_pixels_on_the_mask():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1, 2] = 1
    image = torch.full((1, 3, 4, 4), 0.9)  # bright everywhere
    assert line_loss(image, mask).item() == pytest.approx(0.9 - LINE_DARKNESS)
    image[..., 1, 2] = -1.0  # inked where the mask is: nothing to pay, whatever the rest
    assert line_loss(image, mask).item() == 0.0
    assert line_loss(image, torch.zeros_like(mask)).item() == 0.0


def test_color_loss_sees_casts_and_darkening_but_not_fine_detail():
    photo = torch.rand(2, 3, 16, 16) * 2 - 1
    assert color_loss(photo, photo).item() == 0.0
    checkerboard = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 0.4 - 0.2  # zero mean per 8x8 block
    assert color_loss(photo + checkerboard, photo).item() == pytest.approx(0.0, abs=1e-6)
    assert color_loss(photo - 0.3, photo).item() == pytest.approx(0.3)  # darker everywhere
    cast = photo.clone()
    cast[:, 0] += 0.6  # red cast: one channel of three
    assert color_loss(cast, photo).item() == pytest.approx(0.2)


def test_line_weight_inks_the_contours_of_the_photo(tiny_config, tmp_path):
    # No content loss and a line weight far above the adversarial term: a few steps darken the contour pixels.
    config = tiny_config.replace(content_weight=0.0, line_weight=50.0, lr_g=1e-3)
    trainer = Trainer(config, tmp_path / "run")
    trainer._start_phase("adversarial")
    _, cartoon, smoothed, _ = next(iter(trainer._batches()))
    rgb = np.stack([two_regions(32, 32, seed) for seed in range(len(cartoon))])
    photo = torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    mask = torch.from_numpy(np.stack([PhotoLines()(image) for image in rgb])).float().unsqueeze(1)
    assert mask.sum() > 0

    def ink_missing() -> float:  # in training mode: batch statistics, not the slowly moving running averages
        with torch.no_grad():
            return line_loss(trainer.generator(photo), mask).item()

    before = ink_missing()
    for _ in range(5):
        losses = trainer._adversarial_step(photo, cartoon, smoothed, mask)
    assert "lines" in losses
    assert ink_missing() < 0.25 * before  # with line_weight=0 it stays within 0.7-1.2x


def test_resume_reproduces_the_uninterrupted_run_exactly(tiny_config, tmp_path):
    # 4 steps per epoch (8 photos / batch 2): steps 1-4 are the init phase, 5-12 adversarial
    straight = run(tiny_config, tmp_path / "straight", steps=6)

    interrupted = tmp_path / "interrupted"
    run(tiny_config, interrupted, steps=3)  # stops inside the init phase
    middle = run(tiny_config, interrupted, steps=2, resume=True)  # crosses into the adversarial phase
    assert (middle.progress.phase, middle.progress.step) == ("adversarial", 5)
    resumed = run(tiny_config, interrupted, steps=1, resume=True)

    assert resumed.progress.step == straight.progress.step == 6
    for name in ("generator", "discriminator"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}.{key} differs after resume"
    # the metrics log has each step once
    steps = [json.loads(line)["step"] for line in (interrupted / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_run_directory_contents_and_checkpoint_format(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    run(tiny_config.replace(checkpoint_every=2, keep_checkpoints=2, sample_every=3), run_dir, steps=5)
    names = sorted(p.name for p in (run_dir / "checkpoints").glob("*.safetensors"))
    assert names == ["last.safetensors", "step_00000004.safetensors", "step_00000005.safetensors"]
    assert not list(run_dir.rglob("*.tmp"))
    tensors, meta = checkpoint.load(run_dir / "checkpoints" / "last.safetensors")
    assert meta["step"] == 5 and meta["phase"] == "adversarial" and meta["config"]["arch"] == "cartoongan-lite"
    assert json.loads((run_dir / "checkpoints" / "last.json").read_text()) == meta
    assert any(k.startswith("generator.") for k in tensors) and "rng.torch" in tensors
    assert (run_dir / "config.yaml").exists()
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["step_00000003.png", "step_00000005.png"]


def test_resume_guards(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(CheckpointError, match="last.safetensors does not exist"):
        Trainer(tiny_config, run_dir, resume=True)
    run(tiny_config, run_dir, steps=1)
    with pytest.raises(InvalidInput, match="already holds a run; pass --resume"):
        Trainer(tiny_config, run_dir)
    with pytest.raises(CheckpointError, match=r"differ from it: \['batch_size'\]"):
        Trainer(tiny_config.replace(batch_size=4), run_dir, resume=True)
    (run_dir / "checkpoints" / "last.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        Trainer(tiny_config, run_dir, resume=True)


def test_init_from_starts_from_another_runs_generator(tiny_config, tmp_path):
    first = run(tiny_config, tmp_path / "first", steps=2)
    source = tmp_path / "first" / "checkpoints" / "last.safetensors"
    second = Trainer(tiny_config.replace(init_from=str(source), init_epochs=0), tmp_path / "second")
    assert second.progress.phase == "adversarial"
    for key, value in first.generator.state_dict().items():
        assert torch.equal(second.generator.state_dict()[key], value), key
    with pytest.raises(CheckpointError, match="holds a 'cartoongan-lite' generator, but this run trains 'cartoongan'"):
        Trainer(tiny_config.replace(init_from=str(source), arch="cartoongan"), tmp_path / "third")


def test_too_few_photos_for_a_batch(tiny_config, tmp_path):
    with pytest.raises(InvalidInput, match="cannot fill one batch of 16"):
        Trainer(tiny_config.replace(batch_size=16), tmp_path / "run")


def test_cli_train_then_resume(tiny_data, tmp_path, capsys):
    photos, cartoons = tiny_data
    run_dir = tmp_path / "cli"
    args = ["train", "--photos", str(photos), "--cartoons", str(cartoons), "--out", str(run_dir),
            "--arch", "cartoongan-lite", "--vgg-weights", "random", "--max-steps", "2", "--no-progress",
            "--set", "crop_size=32", "--set", "batch_size=2", "--set", "num_workers=0"]  # fmt: skip
    assert main(args) == 0
    assert "step 2 (init)" in capsys.readouterr().out
    assert main([*args, "--resume"]) == 0
    assert "step 4 (init)" in capsys.readouterr().out
    assert main(["train", "--out", str(run_dir), "--resume", "--max-steps", "1", "--no-progress"]) == 0
    assert "step 5 (init)" in capsys.readouterr().out
    assert main(["train", "--out", str(tmp_path / "x"), "--set", "nonsense=1"]) == 1
    assert "unknown config fields ['nonsense']" in capsys.readouterr().err


DDP_WORKER = """
import os, sys, torch
from cartoongan.training.config import from_dict
import json
from cartoongan.training.trainer import Trainer

config = from_dict(json.loads(sys.argv[1]))
trainer = Trainer(config, sys.argv[2])
trainer.fit(max_steps=3, progress_bar=False)
state = {k: v.detach().clone() for k, v in trainer.generator.module.named_parameters()}
state.update({"d." + k: v.detach().clone() for k, v in trainer.discriminator.module.named_parameters()})
torch.save(state, os.path.join(sys.argv[2], f"rank{trainer.dist.rank}.pt"))
trainer.close()
"""


@pytest.mark.slow
def test_ddp_two_processes_on_cpu_end_with_identical_weights(tiny_config, tmp_path):
    run_dir = tmp_path / "ddp"
    run_dir.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(DDP_WORKER))
    # 8 photos / (batch 2 x 2 ranks) = 2 steps per epoch: steps 1-2 init, step 3 adversarial
    config = tiny_config.replace(init_epochs=1, adv_epochs=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), json.dumps(config.to_dict()), str(run_dir)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rank0 = torch.load(run_dir / "rank0.pt", weights_only=True)
    rank1 = torch.load(run_dir / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    _, meta = checkpoint.load(run_dir / "checkpoints" / "last.safetensors")
    assert (meta["world_size"], meta["step"], meta["phase"]) == (2, 3, "adversarial")


def test_holdout_photos_are_listed_and_never_trained_on(tiny_config, tmp_path):
    trainer = Trainer(tiny_config.replace(holdout_fraction=0.3), tmp_path / "run")
    listed = (tmp_path / "run" / "holdout.txt").read_text().split()
    assert listed and set(listed).isdisjoint(str(p) for p in trainer.dataset.photos)
    assert len(listed) + len(trainer.dataset.photos) == 8


@pytest.mark.slow
def test_sigterm_to_the_process_group_finishes_the_step_and_saves(tiny_data, tmp_path):
    import signal
    import time

    photos, cartoons = tiny_data
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "cartoongan.cli", "train", "--photos", str(photos), "--cartoons", str(cartoons),
               "--out", str(run_dir), "--arch", "cartoongan-lite", "--vgg-weights", "random", "--no-progress",
               "--set", "crop_size=32", "--set", "batch_size=2", "--set", "num_workers=1",
               "--set", "log_every=1"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)  # the main process and its data-loader workers, like a scheduler does
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    assert "stopped by a signal" in stderr
    _, meta = checkpoint.load(run_dir / "checkpoints" / "last.safetensors")
    assert meta["step"] == len(metrics.read_text().splitlines()) >= 2
