#!/usr/bin/env bash
# GPU check of the main job, with a CPU baseline measured in the same run on the same machine.
# Run from the repository root on a machine where JAX sees a GPU:
#   OUT=results/gpu_check BUDGET_S=480 bash benchmarks/gpu_check.sh
# Each step gets min(its own limit, what is left of BUDGET_S); results (JSON/NPZ/figures of every
# run) are packed into $OUT/gpu_runs.tar.gz, a summary into $OUT/gpu_check.json and $OUT/summary.txt.
# The main job is experiments/rf_timescales.py (= `rfdiff run`); the package need not be installed:
# the checkout goes on PYTHONPATH (rfdiff/, rfdiff_cli/ and rfdiff_analysis/ are packages there).
set -u
OUT=${OUT:-results/gpu_check}
BUDGET_S=${BUDGET_S:-480}
RUNS="$OUT/runs"
mkdir -p "$RUNS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
START=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
step() {  # step LIMIT_S ENV... -- CMD...
    local lim=$1; shift
    local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
    local rem; rem=$(left)
    [ "$lim" -gt "$rem" ] && lim=$rem
    if [ "$lim" -lt 20 ]; then echo "== skipped (budget spent): $*"; return; fi
    echo "== $(date +%T) [${lim}s] ${envs[*]} $*"
    local t0=$SECONDS
    env "${envs[@]}" timeout "$lim" "$@" 2>&1 | grep -v "^\s*$" | tail -n 16
    echo "== rc=${PIPESTATUS[0]} wall=$(( SECONDS - t0 ))s"
}
main_job() { echo python3 experiments/rf_timescales.py --no-progress --overwrite --out "$RUNS" "$@"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, jaxlib, numpy, scipy, optax; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, jax.devices())"
python3 -c "import importlib.util as u; print('pytest', bool(u.find_spec('pytest')), 'hypothesis (needed by the test step)', bool(u.find_spec('hypothesis')))"
step 120 X=1 -- $(main_job --p 512 --n 128 --d 16 --name smoke --no-plot)
step 150 X=1 -- $(main_job --p 4096 --n 512 --name gpu_p4096)
step 150 JAX_PLATFORMS=cpu -- $(main_job --p 4096 --n 512 --name cpu_p4096)
step 240 X=1 -- $(main_job --p 16384 --n 512 --method dense --name gpu_p16384_dense)
step 150 X=1 -- python3 -m pytest -q -x -p no:cacheprovider tests/rfdiff/test_dynamics.py tests/rfdiff/test_matrices.py tests/rfdiff/test_lanczos.py
step 180 X=1 -- $(main_job --p 16384 --n 512 --method lanczos --name gpu_p16384_lanczos --no-plot)
step 300 X=1 -- $(main_job --p 32768 --n 512 --name gpu_p32768_auto --no-plot)
# the large-p study's sizes (ψ_p = 256, ψ_n = 16): run last, they need BUDGET_S ≥ 1800 to be reached.
# p = 25 600: the GPU route (dense while it fits), then the CPU route's benchmark on the host (2 threads, as the target)
step 420 X=1 -- $(main_job --d 100 --p 25600 --n 1600 --name gpu_p25600_auto --no-plot)
step 600 OPENBLAS_NUM_THREADS=2 JAX_PLATFORMS=cpu -- python3 benchmarks/bench_large_p.py --p 25600 --n 1600 --d 100 --out "$OUT/bench_large_p.json"
# p = 51 200: U alone is 21 GB; the route with its top-eigenvalue spectrum (λ_mem, λ_pop by block Lanczos)
step 600 X=1 -- $(main_job --d 200 --p 51200 --n 3200 --method lanczos --spectrum edges --name gpu_p51200_edges --no-plot)

python3 benchmarks/summarize_runs.py "$RUNS" --out "$OUT/gpu_check.json" > "$OUT/summary.txt"
cat "$OUT/summary.txt"
tar czf "$OUT/gpu_runs.tar.gz" -C "$OUT" runs && rm -rf "$RUNS"
echo "== done after $(( $(date +%s) - START ))s"
