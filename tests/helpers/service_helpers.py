"""Tiny generated collections for the service tests: artworks, visitor photos of them, distractors.

Every image is drawn with Pillow from a seeded generator, so the tests need no data files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

SIZE = 112


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def artwork(seed: int, size: int = SIZE) -> Image.Image:
    """A made-up painting: a coloured ground with a few bold shapes and stripes."""
    rng = np.random.default_rng(1000 + seed)
    img = Image.new("RGB", (size, size), _colour(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 6))):
        x0, y0 = rng.integers(0, size - 20, 2)
        w, h = rng.integers(20, size // 2, 2)
        box = [int(x0), int(y0), int(x0 + w), int(y0 + h)]
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.rectangle(box, fill=_colour(rng))
        elif shape == 1:
            draw.ellipse(box, fill=_colour(rng))
        else:
            draw.polygon(
                [(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])],
                fill=_colour(rng),
            )
    step = int(rng.integers(6, 14))
    colour = _colour(rng)
    for x in range(0, size, step * 2):
        draw.line([(x, 0), (x + size // 3, size)], fill=colour, width=2)
    return img


def photo_of(art: Image.Image, seed: int, size: int = SIZE) -> Image.Image:
    """A visitor's photo of an artwork: a slightly off-centre crop, other light, a little soft."""
    rng = np.random.default_rng(5000 + seed)
    w, h = art.size
    c = float(rng.uniform(0.9, 0.97))
    cw, ch = int(w * c), int(h * c)
    ox, oy = (int(v) for v in rng.integers(0, [w - cw + 1, h - ch + 1]))
    photo = art.crop((ox, oy, ox + cw, oy + ch)).resize((size, size), Image.Resampling.BILINEAR)
    photo = ImageEnhance.Brightness(photo).enhance(float(rng.uniform(0.85, 1.15)))
    return photo.filter(ImageFilter.GaussianBlur(0.5))


def distractor(seed: int, size: int = SIZE) -> Image.Image:
    """A photo of no artwork: a smooth gradient scene with noise (sky, floor, a blurry object)."""
    rng = np.random.default_rng(9000 + seed)
    y, x = np.mgrid[0:size, 0:size] / size
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = (x * rng.uniform(0, 1) + y * rng.uniform(0, 1))[..., None] / 2
    arr = a * (1 - t) + b * t + rng.normal(0, 12, (size, size, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    cx, cy = rng.integers(20, size - 20, 2)
    r = int(rng.integers(8, 25))
    draw.ellipse([int(cx - r), int(cy - r), int(cx + r), int(cy + r)], fill=_colour(rng))
    return img.filter(ImageFilter.GaussianBlur(1.5))


TITLES = [
    "Harbour at Dawn",
    "Portrait of a Lady",
    "Still Life with Lemons",
    "The Red Tower",
    "Blue Composition",
    "Winter Orchard",
    "Dancers",
    "The Old Mill",
]


def make_collection(root: Path, n: int = 6, photos_per_artwork: int = 1) -> Path:
    """Write a plain collection folder ``root/art-<i>/`` with ``metadata.csv``; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    rows = ["key,title,artist,date,department,url"]
    for i in range(n):
        folder = root / f"art-{i}"
        folder.mkdir()
        art = artwork(i)
        art.save(folder / "0.jpg", quality=92)
        for j in range(1, photos_per_artwork):
            photo_of(art, 100 * i + j).save(folder / f"{j}.jpg", quality=92)
        rows.append(
            f"art-{i},{TITLES[i % len(TITLES)]},Painter {i},{1800 + 10 * i},Paintings,https://example.org/{i}"
        )
    (root / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def make_validation(root: Path, n: int = 6, per_artwork: int = 2, distractors: int = 12) -> Path:
    """Validation queries for :func:`make_collection`: ``root/art-<i>/*`` and ``root/_distractors/*``."""
    for i in range(n):
        folder = root / f"art-{i}"
        folder.mkdir(parents=True)
        for j in range(per_artwork):
            photo_of(artwork(i), 1000 + 10 * i + j).save(folder / f"v{j}.jpg", quality=90)
    folder = root / "_distractors"
    folder.mkdir(parents=True)
    for j in range(distractors):
        distractor(j).save(folder / f"d{j}.jpg", quality=90)
    return root


def jpeg_bytes(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def built_bundle(tmp_path_factory) -> tuple[Path, Path]:
    """A bundle built once per test session from :func:`make_collection` (6 artworks) and its
    validation photos with the offline default model, single-scale; returns (bundle folder, data
    folder)."""
    base = tmp_path_factory.getbasetemp() / "service-bundle"
    bundle = base / "bundle"
    if not (bundle / "bundle.json").is_file():
        from artid.service.builder import BuildOptions, build_bundle

        make_collection(base / "collection")
        make_validation(base / "val")
        # single-scale: on these 6 exhibits multi-scale descriptors put a test distractor
        # (distractor(77) of test_api) above the calibrated threshold
        options = BuildOptions(max_size=128, scales=(1.0,), workers=0)
        build_bundle(base / "collection", bundle, options, val=base / "val")
    return bundle, base


def small_bundle_data(bundle: Path, n: int = 4, per: int = 2, dim: int = 8):
    """Bundle contents without a model: ``n`` artworks ``k0..`` with ``per`` random unit rows each
    (``dim``-d), a pipeline fitted on them without whitening at k=3, tau=10, their thumbnails
    stored in ``bundle``; threshold 0.5."""
    from artid.data.entries import Entry
    from artid.retrieval.pipeline import KNNPipeline, PipelineConfig
    from artid.service import bundle as bundles
    from artid.service.calibrate import Calibration
    from artid.service.collection import Artwork

    rng = np.random.default_rng(0)
    m = rng.normal(size=(n * per, dim)).astype(np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    entries = [
        Entry(path=f"k{i // per}/{i % per}.jpg", label=i // per, kind="exhibit")
        for i in range(n * per)
    ]
    pipe = KNNPipeline(PipelineConfig(whiten="none", k=3, tau=10.0, use_gpu=False))
    pipe.fit(m, np.array([e.label for e in entries]))
    arts = [Artwork(key=f"k{i}", label=i, title=f"T{i}") for i in range(n)]
    thumbs = {
        i: bundles.store_thumbnail(bundle, jpeg_bytes(artwork(i).resize((32, 32))))
        for i in range(n)
    }
    return bundles.BundleData(
        models=[{"ref": "efficientnet_lite0", "spec": {}}],
        extraction={"max_size": 64, "scales": [1.0]},
        pipeline=pipe,
        entries=entries,
        artworks=arts,
        thumbnails=thumbs,
        calibration=Calibration.given(0.5),
    )


#: Attribute labels of :func:`make_collection`'s artworks: a medium each (even: oil, odd: tempera)
#: and a motif of its own (``motif::m<i>``).
ATTRIBUTE_LABELS = ["medium::oil", "medium::tempera"] + [f"motif::m{i}" for i in range(len(TITLES))]


def artwork_attributes(i: int) -> list[str]:
    """The attribute labels of artwork ``i`` (see :data:`ATTRIBUTE_LABELS`)."""
    return [ATTRIBUTE_LABELS[i % 2], f"motif::m{i}"]


def make_imet(base: Path, n: int = 6) -> Path:
    """An iMet-layout folder ``base/imet`` over :func:`make_collection` (train: the artworks' images) and
    :func:`make_validation` (val: their visitor photos) in ``base/collection`` and ``base/val``."""
    root = base / "imet"
    if (root / "labels.csv").is_file():
        return root
    root.mkdir(parents=True)
    (root / "labels.csv").write_text(
        "attribute_id,attribute_name\n"
        + "".join(f"{j},{name}\n" for j, name in enumerate(ATTRIBUTE_LABELS)),
        encoding="utf-8",
    )

    def ids(i: int) -> str:
        return " ".join(str(ATTRIBUTE_LABELS.index(name)) for name in artwork_attributes(i))

    paths = ["id,path"]
    train = ["id,attribute_ids"]
    val = ["id,attribute_ids"]
    for i in range(n):
        train.append(f"c{i},{ids(i)}")
        paths.append(f"c{i},../collection/art-{i}/0.jpg")
        for photo in sorted((base / "val" / f"art-{i}").iterdir()):
            val.append(f"v{i}-{photo.stem},{ids(i)}")
            paths.append(f"v{i}-{photo.stem},../val/art-{i}/{photo.name}")
    for name, rows in (("train.csv", train), ("val.csv", val), ("paths.csv", paths)):
        (root / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def trained_attributes_run(base: Path, max_size: int = 128) -> Path:
    """A kNN label-transfer run (``artid attributes train --model knn``) on :func:`make_imet`'s data,
    descriptors at ``max_size``; trained once per folder."""
    run = base / f"attributes-knn-{max_size}"
    if not (run / "run.json").is_file():
        from artid.attributes.features import FeatureSpec
        from artid.attributes.runs import TrainOptions, train_run

        train_run(
            make_imet(base),
            run,
            TrainOptions(model="knn", features=FeatureSpec(max_size=max_size), k=3, progress=False),
        )
    return run


def built_attributes_bundle(tmp_path_factory) -> tuple[Path, Path]:
    """Like :func:`built_bundle`, with a kNN attributes run at the bundle's image size (one pass per photo);
    returns (bundle folder, data folder)."""
    _, base = built_bundle(tmp_path_factory)
    bundle = base / "bundle-attributes"
    if not (bundle / "bundle.json").is_file():
        from artid.service.builder import BuildOptions, build_bundle

        run = trained_attributes_run(base, 128)
        options = BuildOptions(max_size=128, scales=(1.0,), workers=0, attributes=run)
        build_bundle(base / "collection", bundle, options, val=base / "val")
    return bundle, base
