import logging

import cv2
import numpy as np
import pytest
import torch

from cartoongan.errors import InvalidInput
from cartoongan.training.data import (
    EdgeSmoothing,
    PhotoLines,
    UnpairedDataset,
    extract_frames,
    fit_for_crop,
    list_images,
    prepare_smoothed,
    read_rgb,
    readable_images,
)
from tests.conftest import flat_cartoon


def test_edge_smoothing_changes_pixels_only_near_edges():
    image = np.full((64, 64, 3), 200, np.uint8)
    cv2.rectangle(image, (16, 16), (47, 47), (20, 40, 60), -1)  # one sharp-edged square
    smoothing = EdgeSmoothing()
    smoothed = smoothing(image)
    changed = np.any(smoothed != image, axis=2)
    near_edge = smoothing.edge_mask(image)

    assert changed.sum() > 0
    assert not (changed & ~near_edge).any()  # nothing changes away from the edges
    assert (smoothed[30, 30] == image[30, 30]).all() and (smoothed[2, 2] == image[2, 2]).all()
    # the band is a few pixels wide around the square's outline, not the whole image
    assert near_edge[16, 30] and not near_edge[32, 32] and not near_edge[4, 4]


def test_smoothed_cache_is_reused_and_recomputed_when_a_source_changes(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "c.png"
    cv2.imwrite(str(src), flat_cartoon(rng, 40, 40))
    cache = tmp_path / "cache"
    [(_, first)] = prepare_smoothed([src], cache, EdgeSmoothing())
    mtime = first.stat().st_mtime_ns
    [(_, again)] = prepare_smoothed([src], cache, EdgeSmoothing())
    assert again == first and again.stat().st_mtime_ns == mtime  # cache hit

    cv2.imwrite(str(src), flat_cartoon(rng, 40, 40))  # the source file changes
    [(_, changed)] = prepare_smoothed([src], cache, EdgeSmoothing())
    assert changed != first
    np.testing.assert_array_equal(read_rgb(changed), EdgeSmoothing()(read_rgb(src)))

    [(_, other_params)] = prepare_smoothed([src], cache, EdgeSmoothing(dilate=3))
    assert other_params.parent != changed.parent  # parameters are part of the key


def test_unreadable_images_are_skipped_and_counted(tmp_path, caplog):
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:20])
    with caplog.at_level(logging.WARNING):
        kept = readable_images(list_images(tmp_path), "photo")
    assert kept == [good]
    assert "skipped 3 unreadable photo image(s)" in caplog.text


def test_list_images_is_recursive_and_filters_extensions(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("x.JPG", "a/y.webp", "a/b/z.png", "a/notes.txt", "a/b/w.jpeg"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == [
        "a/b/w.jpeg", "a/b/z.png", "a/y.webp", "x.JPG"
    ]  # fmt: skip


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InvalidInput, match="holds no images"):
        list_images(tmp_path)
    with pytest.raises(InvalidInput, match="does not exist"):
        list_images(tmp_path / "missing")


def test_small_images_are_resized_up_to_the_crop():
    out = fit_for_crop(np.zeros((20, 50, 3), np.uint8), crop=32)
    assert out.shape == (32, 80, 3)
    big = np.zeros((300, 400, 3), np.uint8)
    assert fit_for_crop(big, crop=32) is big
    assert fit_for_crop(big, crop=32, short_side=150).shape == (150, 200, 3)


def test_dataset_items_are_deterministic_per_seed_epoch_index(tiny_data, tmp_path):
    photos, cartoons = tiny_data
    pairs = prepare_smoothed(list_images(cartoons), tmp_path / "cache", EdgeSmoothing())
    dataset = UnpairedDataset(list_images(photos), pairs, crop=32, seed=1)
    a = dataset[0]
    assert [t.shape for t in a] == [(3, 32, 32)] * 3 + [(0,)]  # no contour mask without a PhotoLines
    assert all(t.min() >= -1 and t.max() <= 1 for t in a[:3])
    assert all((x == y).all() for x, y in zip(a, dataset[0]))
    dataset.epoch = 1
    assert any((x != y).any() for x, y in zip(a, dataset[0]))


def test_dataset_contour_mask_is_traced_on_the_photo_crop(tiny_data, tmp_path):
    photos, cartoons = tiny_data
    pairs = prepare_smoothed(list_images(cartoons), tmp_path / "cache", EdgeSmoothing())
    lines = PhotoLines(blur=3, canny_low=10, canny_high=30)  # sensitive enough for the smooth synthetic photos
    photo, _, _, mask = UnpairedDataset(list_images(photos), pairs, crop=32, seed=1, lines=lines)[3]
    rgb = ((photo.permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()  # the uint8 crop, exactly
    assert mask.shape == (1, 32, 32) and mask.dtype == photo.dtype
    assert mask.sum() > 0 and torch.equal(mask[0].bool(), torch.from_numpy(lines(rgb)))


def write_video(path, frames, fps=10.0):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def test_extract_frames_every_n_seconds_skipping_duplicates(tmp_path):
    rng = np.random.default_rng(0)
    scenes = [flat_cartoon(rng, 48, 64) for _ in range(3)]
    # 10 fps, 4 s: scene 0 for 2 s, then scene 1 for 1 s, then scene 2 for 1 s
    frames = [scenes[0]] * 20 + [scenes[1]] * 10 + [scenes[2]] * 10
    video = tmp_path / "film.avi"
    write_video(video, frames)
    saved, skipped = extract_frames(video, tmp_path / "frames", every=0.5)
    names = sorted(p.name for p in (tmp_path / "frames").glob("*.png"))
    assert (saved, skipped) == (3, 5)  # frames 0,5,...,35 -> one per scene
    assert names == ["film_0000000.png", "film_0000020.png", "film_0000030.png"]
    assert read_rgb(tmp_path / "frames" / names[1]).shape == (48, 64, 3)


def test_extract_frames_refuses_non_videos(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    with pytest.raises(InvalidInput, match="fake.mp4"):
        extract_frames(fake, tmp_path / "out")
    with pytest.raises(InvalidInput, match="positive number of seconds"):
        extract_frames(fake, tmp_path / "out", every=0)


def test_holdout_split_is_stable_and_disjoint(tmp_path):
    from cartoongan.training.data import split_holdout

    paths = [tmp_path / f"photo_{i:03d}.jpg" for i in range(200)]
    train, holdout = split_holdout(paths, 0.1)
    assert set(train).isdisjoint(holdout) and len(train) + len(holdout) == 200
    assert 8 <= len(holdout) <= 35
    # the same names give the same split, wherever they live and whatever else is in the folder
    _, again = split_holdout([tmp_path / "other" / p.name for p in paths[::-1]] + [tmp_path / "new.jpg"], 0.1)
    assert sorted(p.name for p in again if p.name != "new.jpg") == sorted(p.name for p in holdout)
    assert split_holdout(paths, 0.0) == (paths, [])
