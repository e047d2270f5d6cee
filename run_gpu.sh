#!/usr/bin/env bash
# Run the experiment in the background on a GPU server, with a timestamped log.
#   ./run_gpu.sh                      # all visible GPUs, the reference configuration
#   GPU=1 ./run_gpu.sh --num-epochs 10 --data-root /data/EchoNet-Dynamic
# Arguments pass through to main.py. Follow the log with: tail -f logs/<timestamp>.log
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ -n "${GPU:-}" ]; then export CUDA_VISIBLE_DEVICES="$GPU"; fi
# The full reference run takes days on a CPU: refuse, unless asked for, rather than start it in the background.
if [ "${ALLOW_CPU:-0}" != 1 ] && ! "$PYTHON" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    echo "error: CUDA is not available here (no GPU, or torch built without CUDA; see: $PYTHON check_gpu.py)," \
         "so run_gpu.sh would run the full reference run on the CPU. Run python main.py --quick on a CPU, or" \
         "set ALLOW_CPU=1 to start this anyway." >&2
    exit 2
fi
mkdir -p logs
log="logs/$(date +%Y%m%d_%H%M%S).log"
"$PYTHON" check_gpu.py > "$log" 2>&1 || true
nohup "$PYTHON" main.py "$@" >> "$log" 2>&1 &
echo "started main.py (pid $!) on CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-all}; log: $log"
