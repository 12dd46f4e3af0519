#!/usr/bin/env bash
# GPU check for a machine without .NET: runs the self-contained ddw bundle (built here with
# `dotnet tool restore && dotnet pwsh build.ps1 publish`) and, when `python3 -c 'import torch'` works, the
# PyTorch eager peer (bench/peers/pytorch_ddw.py) on the same models, wirings and batches; writes every output
# under $OUT (default ./gpu-results) and prints ours vs PyTorch per row, each in FP32 and with TF32 convolutions
# (ddw --tf32 beside PyTorch --allow-tf32, which also puts its Linear layers on TF32).
#
#   bench/gpu-check.sh [BUNDLE_DIR]          # BUNDLE_DIR defaults to publish/linux-x64
#
# Environment (defaults in brackets):
#   DDW_CHECK_DEVICE [cuda]        device for ddw --device and the peer's --device (cpu to try the script here)
#   DDW_CHECK_MINI_BATCHES [256]    resnet_mini (28x28) batch sizes (the first is also profiled)
#   DDW_CHECK_R18_BATCH [64]        resnet18 batch size
#   DDW_CHECK_R18_SIZE [224]        resnet18 input side
#   DDW_CHECK_GPU [h200]            card the profile's roofline floor is computed for (h100|h200)
#   DDW_CHECK_REPETITIONS [5]       timed steps per ddw row
#   DDW_CHECK_PEER_STEPS [10]       timed steps per peer row
#   DDW_CHECK_TIMEOUT_SCALE [1]     multiplies every step's time limit (e.g. 10 on a slow CPU)
#   DDW_CHECK_PYTHON [python3]      interpreter for the peer and the summary table
# Exit status: 0 when every step succeeded (a missing torch is not a failure), else 1.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bundle=${1:-publish/linux-x64}
device=${DDW_CHECK_DEVICE:-cuda}
read -r -a mini_batches <<< "${DDW_CHECK_MINI_BATCHES:-256}"
r18_batch=${DDW_CHECK_R18_BATCH:-64}
r18_size=${DDW_CHECK_R18_SIZE:-224}
gpu=${DDW_CHECK_GPU:-h200}
reps=${DDW_CHECK_REPETITIONS:-5}
peer_steps=${DDW_CHECK_PEER_STEPS:-10}
scale=${DDW_CHECK_TIMEOUT_SCALE:-1}
python=${DDW_CHECK_PYTHON:-python3}
out=${OUT:-./gpu-results}
ddw="$bundle/ddw"

mkdir -p "$out"
out=$(cd "$out" && pwd)
if [[ ! -f "$ddw" ]]; then
    echo "error: no ddw in '$bundle' (build it with: dotnet tool restore && dotnet pwsh build.ps1 publish)" >&2
    exit 2
fi
chmod +x "$ddw" 2>/dev/null || true
# Where a single-file bundle would unpack native libraries (none today): keep it out of $HOME and out of $out.
export DOTNET_BUNDLE_EXTRACT_BASE_DIR=${DOTNET_BUNDLE_EXTRACT_BASE_DIR:-${TMPDIR:-/tmp}/ddw-bundle}

start=$SECONDS
failed=0
summary="$out/steps.txt"
: > "$summary"
have_timeout=0
command -v timeout > /dev/null && have_timeout=1

# step NAME LIMIT_SECONDS COMMAND...: stdout to $out/NAME.out (or .json), stderr to $out/NAME.err; never aborts.
step() {
    local name=$1 limit=$2 ext=out rc=0
    shift 2
    [[ $name == bench-* || $name == peer-* ]] && ext=json
    limit=$(awk -v l="$limit" -v s="$scale" 'BEGIN { v = int(l * s); print (v < 1 ? 1 : v) }')
    local t0=$SECONDS
    printf '[%4ds] %-22s %s\n' $((SECONDS - start)) "$name" "$*"
    if ((have_timeout)); then
        timeout --kill-after=10 "$limit" "$@" > "$out/$name.$ext" 2> "$out/$name.err" || rc=$?
    else
        "$@" > "$out/$name.$ext" 2> "$out/$name.err" || rc=$?
    fi
    local status=ok
    ((rc == 124 || rc == 137)) && status="TIMED OUT after ${limit}s"
    ((rc != 0)) && [[ $status == ok ]] && status="FAILED (exit $rc)"
    if ((rc != 0)); then
        failed=1
        tail -n 5 "$out/$name.err" | sed 's/^/         /' >&2 || true
    fi
    printf '%-22s %-24s %4ds  %s\n' "$name" "$status" $((SECONDS - t0)) "$*" >> "$summary"
    printf '         %s in %ds\n' "$status" $((SECONDS - t0))
    return 0
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git -C "$script_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "host: $(uname -srm), $(nproc) cores"
    echo "device: $device; resnet_mini batches ${mini_batches[*]}; resnet18 ${r18_size}x${r18_size} batch $r18_batch"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
} > "$out/environment.txt" 2>&1 || true
cat "$out/environment.txt"

step info 60 "$ddw" info --device "$device"
step verify 150 "$ddw" verify --device "$device"
# the TF32 tensor-core convolutions at their own tolerance (on the CPU: the emulation, also against a double reference)
step verify-tf32 150 "$ddw" verify --device "$device" --tf32 --op Conv2d
step bench-resnet_mini 120 "$ddw" bench --device "$device" --model resnet_mini --batch "${mini_batches[@]}" --repetitions "$reps" --json
step bench-resnet18 90 "$ddw" bench --device "$device" --model resnet18 --input-size "$r18_size" --batch "$r18_batch" --repetitions "$reps" --json
if [[ $device == cpu ]]; then
    # the CPU runs the TF32 kernels' exact emulation, a check of the numerics many times slower than FP32: one traced step
    step profile-tf32-resnet_mini-chain 120 "$ddw" profile --device cpu --model resnet_mini --batch "${mini_batches[0]}" --wiring chain --warmup 0 --tf32 --json
    echo "bench-tf32 steps skipped on the CPU (the TF32 emulation checks numerics, not speed)" | tee -a "$summary"
else
    step bench-tf32-resnet_mini 120 "$ddw" bench --device "$device" --model resnet_mini --batch "${mini_batches[@]}" --repetitions "$reps" --tf32 --json
    step bench-tf32-resnet18 90 "$ddw" bench --device "$device" --model resnet18 --input-size "$r18_size" --batch "$r18_batch" --repetitions "$reps" --tf32 --json
    step profile-tf32-resnet18-chain 60 "$ddw" profile --device "$device" --model resnet18 --input-size "$r18_size" --batch "$r18_batch" --wiring chain --gpu "$gpu" --tf32 --json
fi
step bench-aggregation 45 "$ddw" bench aggregation --device "$device" --json
# The same aggregation on the simple rung (read-modify-write forward, separate source and adjacency gradients): the A/B
# of the register forward and fused backward that the device's plan runs.
step bench-aggregation-simple 45 "$ddw" bench aggregation --device "$device" --forward simple --backward separate --json
# One traced training step per wiring: per-kernel measured time (CUDA events on Cuda; nothing waits inside the step)
# against the roofline floor of the named card.
for w in chain dense dynamic; do
    step "profile-resnet_mini-$w" 60 "$ddw" profile --device "$device" --model resnet_mini --batch "${mini_batches[0]}" --wiring "$w" --gpu "$gpu" --json
    step "profile-resnet18-$w" 60 "$ddw" profile --device "$device" --model resnet18 --input-size "$r18_size" --batch "$r18_batch" --wiring "$w" --gpu "$gpu" --json
done

# Data-parallel over two GPUs (NCCL) when the machine has them: the NCCL engine's all-reduce/broadcast check and
# timings (two ranks bootstrapped by NCCL_COMM_ID, no MPI needed), and, when mpirun exists, the 2-rank vs 1-process
# training equivalence with gradients through NCCL.
gpus=0
command -v nvidia-smi > /dev/null && gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
if ((gpus >= 2)) && [[ $device == cuda ]]; then
    if [[ -z ${DDW_NCCL_LIBRARY:-} ]] && command -v "$python" > /dev/null; then
        DDW_NCCL_LIBRARY=$("$python" -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so.2"))' 2>/dev/null || true)
        [[ -n $DDW_NCCL_LIBRARY ]] && export DDW_NCCL_LIBRARY
    fi
    step nccl-check 90 bash -c 'export NCCL_COMM_ID=127.0.0.1:29511 WORLD_SIZE=2
        RANK=1 "$0" distributed nccl-check --device cuda:1 --max-mb 64 > /dev/null & r1=$!
        RANK=0 "$0" distributed nccl-check --device cuda:0 --max-mb 64; r0=$?
        wait $r1; r1=$?; exit $((r0 | r1))' "$ddw"
    if command -v mpirun > /dev/null; then
        step distributed-check-nccl 150 mpirun --allow-run-as-root --oversubscribe -n 2 -x TERM=dumb "$ddw" --device cuda distributed check --nccl
    else
        echo "distributed-check-nccl skipped: no mpirun on this machine" | tee -a "$summary"
    fi
else
    echo "NCCL steps skipped: $gpus GPU(s)" | tee -a "$summary"
fi

peer="$script_dir/peers/pytorch_ddw.py"
if command -v "$python" > /dev/null && "$python" -c 'import torch' > /dev/null 2>&1; then
    "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' \
        >> "$out/environment.txt" 2>&1 || true
    step peer-resnet_mini 60 "$python" "$peer" --device "$device" --model resnet_mini --batch "${mini_batches[@]}" --steps "$peer_steps" --cudnn-benchmark --json
    step peer-resnet18 45 "$python" "$peer" --device "$device" --model resnet18 --input-size "$r18_size" --batch "$r18_batch" --steps "$peer_steps" --cudnn-benchmark --json
    step peer-tf32-resnet_mini 60 "$python" "$peer" --device "$device" --model resnet_mini --batch "${mini_batches[@]}" --steps "$peer_steps" --cudnn-benchmark --allow-tf32 --json
    step peer-tf32-resnet18 45 "$python" "$peer" --device "$device" --model resnet18 --input-size "$r18_size" --batch "$r18_batch" --steps "$peer_steps" --cudnn-benchmark --allow-tf32 --json
else
    echo "PyTorch peer skipped: '$python -c \"import torch\"' failed" | tee -a "$summary"
fi

echo
echo "steps (outputs in $out):"
cat "$summary"
echo

if command -v "$python" > /dev/null; then
    "$python" - "$out" <<'PY' | tee "$out/summary.txt" || true
import json, os, sys
out = sys.argv[1]

def load(name):
    path = os.path.join(out, name)
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rows.append(json.loads(line))
            except ValueError:
                pass
    return rows

ours, ours_tf32, device = {}, {}, "?"
for model in ("resnet_mini", "resnet18"):
    for doc in load(f"bench-{model}.json"):
        device = doc.get("device", device)
        for r in doc.get("rows", []):
            ours[(doc["model"], doc["inputSize"], r["batch"], r["wiring"])] = r
    for doc in load(f"bench-tf32-{model}.json"):
        for r in doc.get("rows", []):
            ours_tf32[(doc["model"], doc["inputSize"], r["batch"], r["wiring"])] = r
peer, tf32 = {}, {}
for model in ("resnet_mini", "resnet18"):
    for r in load(f"peer-{model}.json"):
        peer[(r["model"], r["inputSize"], r["batch"], r["wiring"])] = r
    for r in load(f"peer-tf32-{model}.json"):
        tf32[(r["model"], r["inputSize"], r["batch"], r["wiring"])] = r
floor = {}
for model in ("resnet_mini", "resnet18"):
    for w in ("chain", "dense", "dynamic"):
        for doc in load(f"profile-{model}-{w}.json"):
            measured = [k.get("measuredUs") for k in doc.get("kernels", [])]
            total = sum(m for m in measured if m is not None) if any(m is not None for m in measured) else None
            floor[(model, w)] = (doc.get("step", {}).get("floorUs"), total)
name = next(iter(peer.values()), {}).get("deviceName", "no PyTorch run")
print(f"training step (forward + loss + backward + SGD), median ms; ours: ddw on {device}; PyTorch eager: {name}")
print("ours TF32: ddw --tf32 (convolutions' forward, input and weight gradients on TF32 tensor cores); PyTorch TF32: --allow-tf32 (cuDNN and cuBLAS)")
head = f"{'model':12} {'input':>5} {'batch':>5} {'wiring':8} {'ours ms':>9} {'PyTorch FP32 ms':>15} {'ours/FP32':>9} {'ours TF32 ms':>12} {'PyTorch TF32 ms':>15} {'TF32/TF32':>9} {'kernels/floor':>13} {'ours/dense':>10} {'keep':>6}"
print(head)
print("-" * len(head))
for key in sorted(set(ours) | set(peer), key=lambda k: (k[0] != "resnet_mini", k[2], ["dense", "chain", "dynamic"].index(k[3]))):
    o, p = ours.get(key), peer.get(key)
    od = ours.get(key[:3] + ("dense",))
    pd = peer.get(key[:3] + ("dense",))
    f = lambda v, spec: format(v, spec) if v is not None else "-"
    om = o["medianStepMs"] if o else None
    pm = p["medianStepMs"] if p else None
    t = tf32.get(key)
    tm = t["medianStepMs"] if t else None
    ot = ours_tf32.get(key)
    otm = ot["medianStepMs"] if ot else None
    fl, meas = floor.get((key[0], key[3]), (None, None))
    print(f"{key[0]:12} {key[1]:>5} {key[2]:>5} {key[3]:8} {f(om, '>9.2f'):>9} {f(pm, '>15.2f'):>15} "
          f"{f(om / pm if om and pm else None, '>9.2f'):>9} {f(otm, '>12.2f'):>12} {f(tm, '>15.2f'):>15} "
          f"{f(otm / tm if otm and tm else None, '>9.2f'):>9} "
          f"{f(meas / fl if meas and fl else None, '>13.2f'):>13} {f(om / od['medianStepMs'] if om and od else None, '>10.3f'):>10} "
          f"{f(o['keepRate'] if o else None, '>6.1%'):>6}")
for doc in load("bench-aggregation.json") + load("bench-aggregation-simple.json"):
    rates = ", ".join(f"{r['keepRate']:.0%}: {r['medianMs']:.3f} ms (x{r['ratioToFull']:.2f})" for r in doc.get("rows", []))
    print(f"aggregation fwd+bwd (batch 32, 6 nodes, 32 ch, 16x16) on {doc.get('device')}, {doc.get('kernels')}: {rates}")
PY
else
    echo "no $python: read the JSON files in $out"
fi

echo "total ${SECONDS}s; $([[ $failed == 0 ]] && echo 'all steps ok' || echo 'SOME STEPS FAILED (see steps.txt and the .err files)')"
exit "$failed"
