"""Build the default real-image benchmark: gather installable real images, then ``artid synth``.

Sources (documented with their licences in docs/real_images.md):

    samples   the sample images scikit-image, scikit-learn and matplotlib ship (in the venv)
    debian    Debian's wallpaper and background packages (``apt-get download``, unpacked with
              ``dpkg-deb -x``; nothing is installed): see DEBIAN_PACKAGES

The images are copied under ``--work`` (``sources/<group>/<package>/...``, with each Debian
package's ``copyright`` file under ``licences/``) and ``artid synth --source-images`` writes the
benchmark to ``--out`` (near-duplicates merged: one wallpaper ships at many resolutions; large
images cut into up to ``--crops`` exhibits). Both steps resume: files already gathered are kept
and synth continues an interrupted run.

    OMP_NUM_THREADS=1 python benchmarks/real_images.py --out runs/real/benchmark
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

#: Debian (bookworm) packages of wallpapers and backgrounds, with their licences
#: (see each package's copyright file; docs/real_images.md summarises them).
DEBIAN_PACKAGES = (
    "desktop-base",
    "gnome-backgrounds",
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "sway-backgrounds",
    "lomiri-wallpapers",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "ukui-wallpapers",
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _copy_images(src: Path, dst: Path) -> int:
    n = 0
    for p in sorted(src.rglob("*")):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            target = dst / p.relative_to(src)
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, target)
            n += 1
    return n


def gather_samples(work: Path) -> dict[str, int]:
    """The sample images of scikit-image, scikit-learn and matplotlib -> work/sources/samples."""
    import matplotlib
    import skimage
    import sklearn

    folders = {
        "scikit-image": Path(skimage.__file__).parent / "data",
        "scikit-learn": Path(sklearn.__file__).parent / "datasets" / "images",
        "matplotlib": Path(matplotlib.get_data_path()) / "sample_data",
    }
    return {k: _copy_images(v, work / "sources" / "samples" / k) for k, v in folders.items()}


def gather_debian(work: Path, packages: tuple[str, ...]) -> dict[str, int]:
    """Download and unpack Debian's wallpaper packages -> work/sources/debian/<package>."""
    debs, out = work / "debs", {}
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        dst = work / "sources" / "debian" / pkg
        if dst.is_dir() and any(dst.rglob("*")):
            out[pkg] = sum(1 for p in dst.rglob("*") if p.is_file())
            continue
        if not list(debs.glob(f"{pkg}_*.deb")):
            got = subprocess.run(["apt-get", "download", pkg], cwd=debs, capture_output=True)
            if got.returncode != 0:
                print(f"skipped {pkg}: apt-get download failed: {got.stderr.decode()[-200:]}")
                continue
        deb = sorted(debs.glob(f"{pkg}_*.deb"))[-1]
        tree = work / "unpacked" / pkg
        tree.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        copyright_file = tree / "usr" / "share" / "doc" / pkg / "copyright"
        if copyright_file.is_file():
            (work / "licences").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(copyright_file, work / "licences" / f"{pkg}.copyright")
        out[pkg] = _copy_images(tree / "usr" / "share", dst)
        shutil.rmtree(tree)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/real/benchmark"), help="benchmark root")
    ap.add_argument("--work", type=Path, default=Path("runs/real/sources"),
                    help="where the gathered images go")
    ap.add_argument("--no-debian", action="store_true", help="only the Python packages' samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--crops", type=int, default=8)
    ap.add_argument("--met-queries", type=int, default=750)
    ap.add_argument("--val-share", type=float, default=0.2)
    ap.add_argument("--distractor-ratio", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    counts = gather_samples(args.work)
    if not args.no_debian:
        counts |= gather_debian(args.work, DEBIAN_PACKAGES)
    for k, v in counts.items():
        print(f"{k:32s} {v:5d} image files")
    dirs = [str(p) for p in sorted((args.work / "sources").glob("*/*")) if p.is_dir()]
    from artid.cli import main as artid_main

    return artid_main([
        "synth", "--out", str(args.out), "--source-images", *dirs,
        "--seed", str(args.seed), "--image-size", str(args.image_size),
        "--crops", str(args.crops), "--met-queries", str(args.met_queries),
        "--val-share", str(args.val_share), "--distractor-ratio", str(args.distractor_ratio),
        "--workers", str(args.workers),
    ])


if __name__ == "__main__":
    sys.exit(main())
