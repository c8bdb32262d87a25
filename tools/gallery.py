"""Before/after gallery for the README: photo | OpenCV baseline | model, one row per photo.

    python tools/gallery.py PHOTO... -o docs/gallery.jpg [--model model.onnx] [--max-side 512]
"""

from __future__ import annotations

import argparse

import cv2

from cartoongan._io import write_image
from cartoongan.evaluation.baseline import opencv_cartoon
from cartoongan.evaluation.evaluate import contact_sheet
from cartoongan.sdk import Cartoonizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="+")
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--model", help="an exported .onnx model (default: the shipped one)")
    parser.add_argument("--max-side", type=int, default=512, help="photos are shrunk to this long side first")
    parser.add_argument("--height", type=int, default=160, help="row height in the gallery")
    args = parser.parse_args()

    cartoonizer = Cartoonizer(args.model)
    photos = []
    for path in args.photos:
        bgr = cv2.imread(path)
        if bgr is None:
            raise SystemExit(f"{path}: not a readable image")
        scale = min(1.0, args.max_side / max(bgr.shape[:2]))
        photos.append(cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    columns = {
        "photo": photos,
        "opencv baseline": [opencv_cartoon(p) for p in photos],
        "cartoongan (default model)": cartoonizer.run(photos),
    }
    rgb_columns = {name: [img[:, :, ::-1] for img in images] for name, images in columns.items()}
    sheet = contact_sheet(rgb_columns, rows=len(photos), height=args.height)
    write_image(args.out, sheet[:, :, ::-1])
    print(f"wrote {args.out} ({len(photos)} photos)")


if __name__ == "__main__":
    main()
