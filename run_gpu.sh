#!/usr/bin/env bash
# Run the experiment in the background on a GPU server, with a timestamped log.
#   ./run_gpu.sh                      # all visible GPUs, the reference configuration
#   GPU=1 ./run_gpu.sh --num-epochs 10 --data-root /data/EchoNet-Dynamic
# Arguments pass through to main.py. Follow the log with: tail -f logs/<timestamp>.log
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ -n "${GPU:-}" ]; then export CUDA_VISIBLE_DEVICES="$GPU"; fi
mkdir -p logs
log="logs/$(date +%Y%m%d_%H%M%S).log"
"$PYTHON" check_gpu.py > "$log" 2>&1 || true
nohup "$PYTHON" main.py "$@" >> "$log" 2>&1 &
echo "started main.py (pid $!) on CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-all}; log: $log"
