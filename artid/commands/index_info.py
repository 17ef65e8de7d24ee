"""What ``artid index build`` and ``artid index info`` print of a bundle's manifest."""

from __future__ import annotations

from typing import Any


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _threshold(name: str, cal: dict[str, Any]) -> None:
    if cal.get("source") == "validation":
        print(
            f"{name:<13}{cal.get('threshold'):.6g} (calibrated on {cal.get('n_queries')} "
            f"photos + {cal.get('n_distractors')} distractors for "
            f"{_pct(cal.get('target_false_accept'))} distractors accepted)"
        )
        curve = (cal.get("reliability") or {}).get("method")
        if curve:
            from artid.service.calibrate import Calibration

            shown = Calibration.from_json(cal).shown_threshold
            print(
                f"             as a confidence {_pct(shown)} (the probability that an answer "
                f"is right, calibrated on validation: {curve})"
            )
        print(
            f"             on validation: distractors accepted {_pct(cal.get('false_accept'))}, "
            f"precision {_pct(cal.get('precision'))}, recall {_pct(cal.get('recall'))}, "
            f"accuracy {_pct(cal.get('accuracy'))}"
        )
    else:
        print(f"{name:<13}{cal.get('threshold')} (given, not calibrated)")


def print_info(meta: dict, where: str) -> None:
    """The manifest in a few lines: models, counts, the pipeline, thresholds, attributes."""
    from artid.service.bundle_runtime import recorded
    from artid.service.cropping import describe_crop

    ext = meta.get("extraction", {})
    pipe = meta.get("pipeline", {})
    names = [
        m.get("spec", {}).get("backbone", {}).get("name") or m.get("ref")
        for m in meta.get("models", [])
    ]
    projection = pipe.get("projection") or {}
    print(f"bundle       {where} ({meta.get('generation')}, updated {meta.get('updated')})")
    print(f"artworks     {meta.get('artworks')} ({meta.get('images')} images)")
    print(
        f"model        {' + '.join(map(str, names))}, max size {ext.get('max_size')}, "
        f"scales {ext.get('scales')}"
    )
    print(f"crop         {describe_crop(ext.get('crop'))}")
    runtime = recorded(ext)
    calibration = (f", calibrated on the first database images ({runtime.calibration_id[:12]})"
                   if runtime.calibration_id else "")
    print(f"runtime      {runtime.runtime} {runtime.precision}{calibration} (recognize, serve and "
          "index add describe photos this way)")
    print(
        f"pipeline     whitening {projection.get('whiten')} {projection.get('dims')}, "
        f"{pipe.get('index')} index, k={pipe.get('k')} tau={pipe.get('tau')} "
        f"N={pipe.get('n_classes')}, expansion {pipe.get('expansion')}"
    )
    _threshold("threshold", meta.get("calibration", {}))
    _print_validation(meta)
    _print_attributes(meta)
    _print_rerank(meta)
    n_cal = None
    for h in meta.get("history", []):
        if str(h.get("operation", "")).startswith("build"):
            n_cal = h.get("artworks")
    for h in meta.get("history", []):
        if h.get("failures"):
            print(
                f"unreadable   {len(h['failures'])} image(s) left out by '{h.get('operation')}' "
                f"({h.get('time')}):"
            )
            print_failures(h["failures"], header=False)
    if n_cal is not None and n_cal != meta.get("artworks") and not meta.get("validation"):
        print(
            f"note         the threshold was calibrated with {n_cal} artworks; after adding or "
            "removing artworks, rebuild to recalibrate it"
        )


def _print_validation(meta: dict) -> None:
    """The validation photos the bundle keeps, and when the threshold was last set on them."""
    val = meta.get("validation")
    if not val:
        given = meta.get("calibration", {}).get("source") != "validation"
        why = "the threshold was given" if given else "built by an older artid"
        print(f"validation   none kept ({why}: edits keep the threshold)")
        return
    cal = meta.get("calibration", {})
    when = next(
        (
            f"recalibrated {h.get('time')} ({h.get('operation')})"
            for h in reversed(meta.get("history", []))
            if "threshold recalibrated" in str(h.get("operation", ""))
        ),
        "calibrated at the build",
    )
    target = cal.get("target_false_accept")
    print(
        f"validation   {val.get('queries')} photos ({val.get('distractors')} distractors) kept "
        f"in {val.get('ref')}: target {_pct(target) if target is not None else 'none (given)'}"
        f", threshold {cal.get('threshold', float('nan')):.4g} (log-odds), {when}"
    )


def _print_attributes(meta: dict) -> None:
    attr = meta.get("attributes")
    if not attr:
        print("attributes   none (build with --attributes RUN to tag photos)")
        return
    f2 = attr.get("val_f2")
    feats = attr.get("features", {})
    ext = meta.get("extraction", {})
    same = feats.get("max_size") == ext.get("max_size") and [
        float(s) for s in feats.get("scales", [])
    ] == [float(s) for s in ext.get("scales", [])]
    groups = ", ".join(g or "(none)" for g in attr.get("groups", []))
    print(
        f"attributes   {attr.get('model')} run from {attr.get('source')}: {attr.get('labels')} "
        f"labels ({groups}), {attr.get('thresholds')} thresholds"
        + (f" (validation F2 {100 * f2:.1f}%)" if isinstance(f2, (int, float)) else "")
    )
    print(
        f"             descriptors at max size {feats.get('max_size')}, scales "
        f"{feats.get('scales')}: "
        + ("the recognition pass's" if same else "a second pass of the network per photo")
    )


def _print_rerank(meta: dict) -> None:
    stage = meta.get("pipeline", {}).get("rerank")
    if not stage:
        print("re-ranking   none (build with --rerank 50 to verify photos with SIFT keypoints)")
        return
    tuned = (
        f", validation GAP {_pct(stage['val_gap'])} vs {_pct(stage.get('global_val_gap'))} global"
        if stage.get("val_gap") is not None
        else " (defaults, not tuned)"
    )
    print(
        f"re-ranking   K={stage.get('top')}: w={stage.get('w')}, "
        f"min_inliers={stage.get('min_inliers')}, tau={stage.get('tau')}{tuned}"
    )
    _threshold("kNN only", meta.get("global_calibration", {}))


def print_failures(failures: list[dict[str, Any]], header: bool = True, limit: int = 20) -> None:
    """List images that could not be read (the first ``limit``; the history keeps them all)."""
    if not failures:
        return
    if header:
        print(
            f"{len(failures)} image(s) could not be read and were left out "
            "(`artid index info` lists them):"
        )
    for f in failures[:limit]:
        print(f"  {f.get('path')}: {f.get('error')}")
    if len(failures) > limit:
        print(f"  ... and {len(failures) - limit} more (`artid index info --json` lists all)")
