"""TensorRT engines built lazily on the target machine, once, and cached.

Ship the ONNX; the first `Cartoonizer(model="x.onnx", backend="tensorrt")` on a
device builds the engine into the cache, every later one (in any process) loads
it. The cache key covers everything an engine is specific to: the ONNX bytes,
the TensorRT version, the GPU, the precision and the shape profile. A file lock
makes a second process wait for the first one's build instead of repeating it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

from cartoongan._deps import require
from cartoongan.errors import EngineMismatch
from cartoongan.export.engine import (
    Profile,
    build_engine,
    current_identity,
    read_sidecar,
    sha256_file,
    sidecar_mismatches,
)

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """$CARTOONGAN_ENGINE_CACHE, else ~/.cache/cartoongan/engines."""
    override = os.environ.get("CARTOONGAN_ENGINE_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cartoongan" / "engines"


def cache_key(onnx_sha256: str, identity: dict, precision: str, profile: Profile) -> str:
    """Stable name of one engine: a change in any input gives another key."""
    blob = json.dumps(
        {"onnx": onnx_sha256, **identity, "precision": precision, "profile": profile.to_dict()}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def expected_sidecar(onnx_sha256: str, identity: dict, precision: str, profile: Profile) -> dict:
    return {**identity, "precision": precision, "profile": profile.to_dict(), "onnx_sha256": onnx_sha256}


def fix_command(onnx: Path, engine: Path, precision: str, profile: Profile) -> str:
    return f"cartoongan export engine {onnx} -o {engine} --precision {precision} {profile}"


def cached_engine(
    onnx_path: str | Path,
    precision: str = "fp16",
    profile: Profile = Profile(),
    cache_dir: str | Path | None = None,
    rebuild: bool = True,
    calibration: str | Path | None = None,
    builder: Callable[..., Path] = build_engine,
    identity: Callable[[], dict] = current_identity,
) -> Path:
    """The engine for (ONNX, this machine, precision, profile): from the cache, or built now under a lock.

    A cached engine whose sidecar does not match is rebuilt; with `rebuild=False` it is refused
    with `EngineMismatch`, whose message holds the command that builds a matching one.
    """
    filelock = require("filelock", "the TensorRT engine cache")
    onnx_path = Path(onnx_path)
    onnx_sha = sha256_file(onnx_path)
    machine = identity()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    engine = folder / f"{onnx_path.stem}-{precision}-{cache_key(onnx_sha, machine, precision, profile)}.plan"
    expected = expected_sidecar(onnx_sha, machine, precision, profile)
    with filelock.FileLock(f"{engine}.lock"):
        if engine.is_file():
            problems = sidecar_mismatches(read_sidecar(engine), expected)
            if not problems:
                return engine
            if not rebuild:
                raise EngineMismatch(
                    f"cached engine {engine} does not match this machine or request ({'; '.join(problems)}); "
                    f"rebuild it with: {fix_command(onnx_path, engine, precision, profile)}"
                )
            log.warning("rebuilding %s: %s", engine.name, "; ".join(problems))
        elif not rebuild:
            raise EngineMismatch(
                f"no cached engine {engine}; build it with: {fix_command(onnx_path, engine, precision, profile)}"
            )
        log.warning("building a TensorRT %s engine for %s (once per GPU and TensorRT version)", precision,
                    onnx_path.name)  # fmt: skip
        builder(onnx_path, engine, precision, profile, calibration=calibration)
    return engine


def check_engine(engine: str | Path, rebuild_hint: str | None = None, identity: Callable[[], dict] = current_identity):
    """Refuse an engine built for another GPU or TensorRT version (its sidecar says which)."""
    sidecar = read_sidecar(engine)
    machine = identity()
    problems = sidecar_mismatches(sidecar, machine)
    if problems:
        hint = rebuild_hint or "rebuild it here with `cartoongan export engine MODEL.onnx -o ENGINE.plan`"
        raise EngineMismatch(f"engine {engine} was not built for this machine ({'; '.join(problems)}); {hint}")
    return sidecar
