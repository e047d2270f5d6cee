#!/usr/bin/env bash
# Run the experiment in the background on a GPU server, with a timestamped log: on every visible GPU,
# one process each (torchrun --standalone --nproc_per_node=<GPUs>), or plain python on one GPU.
#   ./run_gpu.sh                      # all visible GPUs, the reference configuration
#   GPU=1 ./run_gpu.sh --num-epochs 10 --data-root /data/EchoNet-Dynamic   # GPU 1 only
# Arguments pass through to main.py. Follow the log with: tail -f logs/<timestamp>.log; its last line
# says how main.py ended. Started again with the same arguments, a run continues where it stopped
# (keep the number of GPUs: a run's results are those of its number of processes).
# LOG_DIR (default logs) is where the log goes; PYTHON, the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
LOG_DIR=${LOG_DIR:-logs}
if [ -n "${GPU:-}" ]; then export CUDA_VISIBLE_DEVICES="$GPU"; fi
visible='import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)'
if ! gpus=$("$PYTHON" -c "$visible"); then
    echo "error: $PYTHON cannot import torch (pip install -r requirements.txt, or set PYTHON)" >&2
    exit 2
fi
# The full reference run takes days on a CPU: refuse, unless asked for, rather than start it in the
# background.
if [ "${ALLOW_CPU:-0}" != 1 ] && [ "$gpus" -lt 1 ]; then
    echo "error: CUDA is not available here (no GPU, or torch built without CUDA; see:" \
         "$PYTHON check_gpu.py), so run_gpu.sh would run the full reference run on the CPU." \
         "Run python main.py --quick on a CPU, or set ALLOW_CPU=1 to start this anyway." >&2
    exit 2
fi
if [ "$gpus" -gt 1 ]; then  # torchrun from this interpreter's torch
    command=("$PYTHON" -m torch.distributed.run --standalone "--nproc_per_node=$gpus" main.py "$@")
else
    command=("$PYTHON" main.py "$@")
fi
args=""
if [ $# -gt 0 ]; then args=$(printf ' %q' "$@"); fi
again="${GPU:+GPU=$GPU }./run_gpu.sh$args"
mkdir -p "$LOG_DIR"
log="$LOG_DIR/$(date +%Y%m%d_%H%M%S).log"
"$PYTHON" check_gpu.py > "$log" 2>&1 || true
where="$gpus GPU(s) (CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-all})"
if [ "$gpus" = 0 ]; then where="the CPU (ALLOW_CPU=1)"; fi
echo "starting on $where:$(printf ' %q' "${command[@]}")" >> "$log"
(
    trap '' HUP  # as nohup: the run outlives the terminal that started it
    status=0
    "${command[@]}" || status=$?
    if [ "$status" = 0 ]; then
        echo "main.py exited with status 0 (finished) at $(date '+%Y-%m-%d %H:%M:%S')"
    else
        echo "main.py exited with status $status at $(date '+%Y-%m-%d %H:%M:%S'); the messages above" \
             "say why. Run the same command again to continue where it stopped: $again"
    fi
) >> "$log" 2>&1 < /dev/null &
echo "started main.py on $where, process $!; log: $log"
