#!/usr/bin/env bash
# One GPU check of training (issue 12): the Con-Syn+Real contrastive row at 224 px on one GPU,
# trained twice from the same start, without and with autocast (bf16), each evaluated on the
# same test queries; prints test GAP / ACC of both (with the paired difference to the untrained
# model) and the training images/s from the runs' logs. Budget: about 8 minutes on one H200.
#
#   bash benchmarks/gpu_check.sh [OUT]         (OUT default: runs/gpu_check; rerun resumes)
#
# Needs `make setup` done and a CUDA device; refuses to run on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_check}
PY=.venv/bin/python
$PY -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check: no CUDA device")'
$PY -c 'import torch; print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)'
# one benchmark for both runs: 300 classes, 600 visitor photos, images at 256 px (resumable)
.venv/bin/artid synth --out "$OUT/synth" --classes 300 --image-size 256 --met-queries 600 --val-share 0.3 \
    --distractor-ratio 2 --no-progress >/dev/null
for amp in off bf16; do
    start=$(date +%s)
    .venv/bin/artid train table53 --out "$OUT/amp_$amp" --root "$OUT/synth" --rows untrained,Con-Syn+Real --seeds 1 \
        --size 224 --device cuda --amp "$amp" --resamples 500 2>"$OUT.amp_$amp.log" | tail -8
    echo "amp=$amp: $(( $(date +%s) - start )) s wall"
    $PY - "$OUT/amp_$amp" <<'EOF2'
import json, pathlib, sys
for log in sorted((pathlib.Path(sys.argv[1]) / "runs").glob("*/log.jsonl")):
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    rates = [r["images_per_s"] for r in rows if "images_per_s" in r]
    print(f"  {log.parent.name}: training {sum(rates) / max(len(rates), 1):.1f} images/s over {len(rates)} epochs")
EOF2
done
