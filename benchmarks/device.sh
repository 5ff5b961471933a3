#!/usr/bin/env bash
# The whole benchmark suite on one GPU in under 8 minutes, written to benchmarks/RESULTS-cuda.md.
#
#   bash benchmarks/device.sh --fetch     # here (pip and the registry): the wheels a GPU machine lacks
#   bash benchmarks/device.sh             # on the GPU machine: install those wheels, run, write the report
#   bash benchmarks/device.sh --dry-run   # print what it would run, run nothing
#
# The GPU machines this project borrows have torch, torchvision, pluggy, attrs, rich, tensorboard and
# pytorch-lightning but no registry: --fetch downloads the rest (cattrs, kornia, albumentations, lightly
# and their own needs; versions as in this checkout's .venv) as Python 3.12 manylinux wheels into
# benchmarks/.wheels (git-ignored). On the GPU machine each wheel whose distribution is missing there is
# installed into a private folder on PYTHONPATH; the repository itself is imported from the checkout.
#
# Time budget: every benchmark gets a per-benchmark limit (run_all --timeout) and sizes that fit, and the
# report is rewritten after each one, so a run cut short still leaves the finished figures (marked
# partial). Environment: PYTHON (default python3), BUDGET_S (default 460 s for all benchmarks together),
# OUT (when set, the report and the raw log are copied there).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
WHEELS=benchmarks/.wheels
SITE=${SITE_DIR:-/tmp/contrastkit-bench-site}
BUDGET_S=${BUDGET_S:-460}
REPORT=benchmarks/RESULTS-cuda.md
# Distribution names the GPU image lacks (checked there one by one; present ones are not installed).
NEEDED=(cattrs kornia kornia_rs albumentations albucore pydantic pydantic_core annotated-types
        typing-inspection simsimd stringzilla lightly hydra-core omegaconf antlr4-python3-runtime)
BENCHMARKS=(overhead losses augmentation training peers)

fetch() {
    local venv_py=${VENV_PYTHON:-.venv/bin/python}
    mkdir -p "$WHEELS"
    local name version
    for name in "${NEEDED[@]}"; do
        version=$("$venv_py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null || true)
        local spec=$name${version:+==$version}
        if [[ $name == antlr4-python3-runtime ]]; then  # published as an sdist only: build the pure-Python wheel here
            "$venv_py" -m pip wheel -q --no-deps -w "$WHEELS" "$spec"
            continue
        fi
        "$venv_py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d "$WHEELS" "$spec"
    done
    du -sh "$WHEELS"
}

install_missing() {
    mkdir -p "$SITE"
    local wheel dist
    shopt -s nullglob
    for wheel in "$WHEELS"/*.whl; do
        dist=$(basename "$wheel" | cut -d- -f1)
        if "$PY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$dist" 2>/dev/null; then
            echo "have $dist"
        else
            echo "installing $(basename "$wheel")"
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$wheel"
        fi
    done
    export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
}

# Sizes per benchmark that fit the budget on an H100/H200 (each row a few seconds to a minute).
bench_args() {
    printf '%s\n' \
        "--args" "overhead=--encoder resnet18 --steps 40 --repeats 3" \
        "--args" "losses=--sizes 1024,4096,8192 --repeats 20" \
        "--args" "augmentation=--workers 12 --repeats 2" \
        "--args" "training=--steps 30 --repeats 2 --set train.num_workers=12" \
        "--args" "peers=--settings 32px,224px --steps 30 --warmup-steps 5 --repeats 2 --workers 12 --decode device"
}

run() {
    local per=$((BUDGET_S / ${#BENCHMARKS[@]}))
    local only
    only=$(IFS=,; echo "${BENCHMARKS[*]}")
    mapfile -t extra < <(bench_args)
    local cmd=("$PY" -m benchmarks --device cuda --only "$only" --timeout "$per" --out "$REPORT" "${extra[@]}")
    echo "+ ${cmd[*]}"
    if [[ ${DRY_RUN:-0} == 1 ]]; then return 0; fi
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: run this on a GPU machine')"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    local status=0
    "${cmd[@]}" 2>&1 | tee /tmp/contrastkit-bench.log || status=$?
    if [[ -n ${OUT:-} ]]; then cp "$REPORT" /tmp/contrastkit-bench.log "$OUT"/ || true; fi
    return $status
}

case ${1:-} in
    --fetch) fetch ;;
    --dry-run) DRY_RUN=1; echo "would install from $WHEELS: ${NEEDED[*]} (those missing)"; run ;;
    "") install_missing; run ;;
    *) echo "usage: bash benchmarks/device.sh [--fetch | --dry-run]" >&2; exit 2 ;;
esac
