"""`cartoongan cartoonize`: files, folders and globs in; one readable line per failure; non-zero exit if any."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np

from cartoongan._io import read_image, write_image
from cartoongan.errors import CartoonGANError, InvalidInput

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def collect(inputs: list[str]) -> list[tuple[Path, Path]]:
    """(input file, path relative to the output folder) for every input; folders are searched recursively."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            found += [(p, p.relative_to(path)) for p in files]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                raise InvalidInput(f"{item}: no such file, folder or matching glob")
            found += [(m, Path(m.name)) for m in matches]
    if not found:
        raise InvalidInput(f"no images found in {inputs}")
    return found


def load_for_sdk(path: Path) -> np.ndarray:
    image = read_image(path, -1)  # IMREAD_UNCHANGED: keep alpha and grayscale as they are
    if image is None:
        raise InvalidInput("cannot be decoded as an image (empty, truncated or not an image file)")
    if image.dtype == np.uint16:  # 16-bit PNG/TIFF
        image = (image // 257).astype(np.uint8)
    return image


def cartoonize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cartoongan.sdk import Cartoonizer

    jobs = collect(args.inputs)
    out = Path(args.out)
    single_file = len(jobs) == 1 and out.suffix.lower() in IMAGE_EXTENSIONS
    cartoonizer = Cartoonizer(
        args.model, backend=args.backend, precision=args.precision, max_side=args.max_side,
        preserve_color=args.preserve_color,
    )  # fmt: skip
    print(f"model {cartoonizer.info.path.name} ({cartoonizer.info.arch}, {cartoonizer.info.precision}) "
          f"on {cartoonizer.backend} {cartoonizer.providers}", file=sys.stderr)
    failures, skipped, written = [], 0, 0
    with cartoonizer, tqdm(jobs, unit="img", disable=args.no_progress, file=sys.stderr) as bar:
        for source, relative in bar:
            target = out if single_file else out / relative
            if target.exists() and not args.overwrite:
                skipped += 1
                continue
            try:
                write_image(target, cartoonizer.run(load_for_sdk(source)))
                written += 1
            except CartoonGANError as exc:
                failures.append(f"{source}: {exc}")
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    summary = f"wrote {written} image(s) to {out}"
    if skipped:
        summary += f", skipped {skipped} existing (use --overwrite)"
    if failures:
        summary += f", {len(failures)} failed"
    print(summary)
    return 1 if failures else 0
