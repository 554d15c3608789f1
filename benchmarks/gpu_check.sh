#!/usr/bin/env bash
# The GPU check of issue #23, as one command for the device machine (its own python3 and torch; no
# network there, so nothing is installed: the checkout runs from PYTHONPATH). Writes $OUT/gpu_check.json
# (or ./gpu_check.json) and a log. Sized for under 8 minutes on one H100/H200.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR=${OUT:-.}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export STREAMTAG_HOME=${STREAMTAG_HOME:-$(mktemp -d)}
# decode/resample threads scale with the cores; torch's CPU threads too
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUTDIR/gpu_check.log"
timeout 470 python3 benchmarks/gpu_check.py --device "${DEVICE:-cuda}" --out "$OUTDIR/gpu_check.json" "$@" \
  2>&1 | tee -a "$OUTDIR/gpu_check.log"
