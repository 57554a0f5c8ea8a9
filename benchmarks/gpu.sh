#!/usr/bin/env bash
# GPU figures in one table (training per method and precision, loader, masks, predict / export
# latency of monodepth2-m and litemono-m); under 8 minutes on one GPU. Safe on a machine that has nothing but this repository:
# builds .venv through make when it is missing or older than pyproject.toml. Without CUDA it
# prints one line and exits 0. Extra arguments go to benchmarks/bench_gpu.py (--cpu-smoke).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    make .venv/.installed
fi
exec .venv/bin/python -m benchmarks.bench_gpu "$@"
