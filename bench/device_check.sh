#!/usr/bin/env bash
# One prepared run of everything bistro must show on a GPU, for a bare GPU machine that has only
# CUDA, CMake and a PyTorch 2.x wheel with transformers (bench/device_deps.sh fetches the rest
# here, into .devdeps/, to carry along). Prints one table (and writes it to $OUT or out/):
#   - the device tests (Device.*: fp32 training on the device against the CPU, bf16 against fp32,
#     the outer step and the hash bit-identical to the CPU's; Transformers.*: a bistro checkpoint
#     under transformers' LlamaForCausalLM, fp32 logits within 1e-4, and back);
#   - the bf16 training step of bistro-1b at batch x 2048 tokens: time and MFU, beside PyTorch
#     eager and torch.compile of the same model (transformers' LlamaForCausalLM, sdpa) in this run;
#   - a 3-miner localnet on the device: every node's hash agrees, the window's time split.
#   bench/device_check.sh          on the GPU machine (builds build-gpu/ against python3's torch)
#   bench/device_check.sh --cpu    here: the same steps on the CPU with Debian's libtorch (a small
#                                  model, an fp32 localnet), the GPU-only rows marked skipped
# Sized to finish in under 8 minutes on an H200 (so it can run twice in 15).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=gpu
[[ ${1:-} == --cpu ]] && mode=cpu
out=${OUT:-$root/out/device_check}
mkdir -p "$out"
rm -rf "$out/localnet" "$out/model"  # a rerun starts clean
table=$out/table.md
log=$out/log.txt
: > "$log"
start=$SECONDS
fails=0
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3" >> "$table"; }
note() { echo "device_check: $* ($((SECONDS - start)) s)" | tee -a "$log"; }
jget() { /usr/bin/env python3 -c "import json,sys; d=json.loads(sys.argv[1]); print($2)" "$1"; }

if [[ $mode == gpu ]]; then
  python=python3
  # 1. The Debian libraries, unpacked into a prefix (never into /).
  prefix=/tmp/bistro-deps
  mkdir -p "$prefix"
  for f in "$root"/.devdeps/*.deb; do dpkg -x "$f" "$prefix"; done
  arch=x86_64-linux-gnu
  export PATH=$prefix/usr/bin:$PATH
  export PKG_CONFIG_PATH=$prefix/usr/lib/$arch/pkgconfig:$prefix/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$prefix
  export LD_LIBRARY_PATH=$prefix/usr/lib/$arch:$prefix/lib/$arch:${LD_LIBRARY_PATH:-}
  export LIBRARY_PATH=$prefix/usr/lib/$arch:$prefix/lib/$arch
  export CPATH=$prefix/usr/include
  wheel=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
  build=$root/build-gpu
  note "building against $wheel ($(python3 -c 'import torch; print(torch.__version__)'))"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBISTRO_TORCH_WHEEL="$wheel" \
    -DCMAKE_PREFIX_PATH="$prefix/usr" >> "$log" 2>&1 &&
    cmake --build "$build" -j"$(nproc)" --target bistro test_model >> "$log" 2>&1 ||
    { note "BUILD FAILED"; tail -40 "$log"; exit 1; }
  device=cuda dtype=bf16 preset=bistro-1b batch=8 seq=2048 peak=989 steps=5
else
  python=$root/.venv/bin/python
  if [[ -n ${BISTRO_BUILD:-} ]]; then  # ctest: the tree it tests is built already
    build=$BISTRO_BUILD
  else
    "$root/scripts/build" bistro test_model >> "$log" 2>&1 || { note "BUILD FAILED"; tail -40 "$log"; exit 1; }
    build=$root/build
  fi
  device=cpu dtype=bf16 preset=tiny batch=2 seq=256 peak=0 steps=3
fi
bistro=$build/bistro
{
  echo "# bench/device_check.sh ($mode) on $(hostname), $(date -u +%F)"
  echo
  echo "| check | result | note |"
  echo "| --- | --- | --- |"
} > "$table"
if [[ $mode == gpu ]]; then
  row "device" "$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -1)" \
    "torch $(python3 -c 'import torch; print(torch.__version__)')"
else
  row "device" "CPU ($(nproc) cores)" "Debian libtorch; GPU rows skipped"
fi
row "build" "ok" "$((SECONDS - start)) s"

# 2. The device tests.
note "device tests"
if BISTRO_TEST_DEVICE=$device BISTRO_SOURCE_DIR=$root BISTRO_HF_PYTHON=$python \
  "$build/test_model" --gtest_filter='Device.*:*Transformers*' > "$out/tests.txt" 2>&1; then
  row "Device.* and *Transformers* tests on $device" "pass" \
    "$(grep -c '^\[       OK' "$out/tests.txt") tests: CPU-equal outer step and hash, HF logits within 1e-4"
else
  fails=$((fails + 1))
  row "Device.* and *Transformers* tests on $device" "FAIL" \
    "$(grep '^\[  FAILED' "$out/tests.txt" | head -3 | tr '\n' ' ')"
fi

# 3. The training step, bistro beside PyTorch eager and torch.compile.
note "training step: $preset, $batch x $seq, $dtype"
"$bistro" model init --preset "$preset" --out "$out/model" >> "$log" 2>&1
b=$("$bistro" bench train --preset "$preset" --batch "$batch" --seq-len "$seq" --device "$device" \
  --dtype "$dtype" --steps "$steps" --warmup 2 --peak-tflops "$peak" --no-peak --json 2>> "$log")
if [[ -n $b ]]; then
  fpt=$(jget "$b" "d['gflops'] * 1e9 / d['tokens_per_s']")  # FLOPs per token, for PyTorch's MFU
  row "bistro $dtype step ($preset, ${batch}x$seq)" "$(jget "$b" "f\"{d['step_ms']:.1f} ms\"")" \
    "$(jget "$b" "f\"{d['tokens_per_s']:.0f} tok/s, MFU {100*d['mfu']:.1f}% of $peak TFLOP/s\" if d['mfu'] else f\"{d['tokens_per_s']:.0f} tok/s\"")"
else
  fails=$((fails + 1)); fpt=0
  row "bistro $dtype step" "FAIL" "$(tail -1 "$log")"
fi
for m in eager compile; do
  if [[ $m == compile && $mode == cpu ]]; then
    row "PyTorch torch.compile step" "skipped" "Debian's torch 1.13 has no torch.compile"; continue
  fi
  flag=(); [[ $m == compile ]] && flag=(--compile)
  r=$("$python" "$root/bench/device_torch_ref.py" "$out/model/config.json" --batch "$batch" \
    --seq-len "$seq" --device "$device" --dtype "$dtype" --steps "$steps" --peak-tflops "$peak" \
    --flops-per-token "$fpt" "${flag[@]}" 2>> "$log" | tail -1)
  if [[ -n $r ]]; then
    row "PyTorch $m step (transformers, same shape)" "$(jget "$r" "f\"{d['step_ms']:.1f} ms\"")" \
      "$(jget "$r" "f\"{d['tokens_per_s']:.0f} tok/s\" + (f\", MFU {100*d['mfu']:.1f}%\" if d['mfu'] else '') + ', torch ' + d['torch']")"
  else
    fails=$((fails + 1)); row "PyTorch $m step" "FAIL" "see log.txt"
  fi
done

# 4. A 3-miner localnet on the device.
lnet=(--windows 4)
ldtype=$dtype
if [[ $mode == cpu ]]; then
  # The rehearsal runs this step's commands and reads its reports; bf16 on a CPU without native
  # bf16 (AVX2 only) runs about 13x slower than fp32 and took 7 of CI's minutes here, while ctest
  # localnet_bf16 already runs a bf16 localnet on the CPU. So fp32 here, in small windows.
  echo '{"inner_steps": 2, "score_batches": 2, "score_random_batches": 2}' > "$out/small.json"
  lnet=(--windows 2 --hparams "$out/small.json")
  ldtype=fp32
fi
note "localnet: 3 miners on $device $ldtype"
if "$bistro" localnet --miners 3 "${lnet[@]}" --device "$device" --dtype "$ldtype" \
  --dir "$out/localnet" > "$out/localnet.txt" 2>&1; then
  s=$out/localnet/report/summary.json
  row "localnet, 3 miners, $device $ldtype" \
    "$(jget "$(cat "$s")" "f\"{d['theta_agree']} of {d['theta_compared']} hashes agree\"")" \
    "$(jget "$(cat "$s")" "f\"master loss {d['first_master_loss']:.3f} -> {d['last_master_loss']:.3f}\"")"
  split=$(/usr/bin/env python3 - "$out/localnet" <<'PY'
import json, sys, pathlib, collections
tot = collections.Counter()
for f in pathlib.Path(sys.argv[1], "state").glob("miner-*/metrics.jsonl"):
    for line in f.read_text().splitlines():
        for k, v in json.loads(line).get("seconds", {}).items():
            tot[k] += v
all_ = sum(tot.values()) or 1
print(", ".join(f"{k} {100 * v / all_:.0f}%" for k, v in tot.most_common()))
PY
)
  row "miners' window time split" "$(echo "$split" | cut -d, -f1)" "$split"
else
  fails=$((fails + 1)); row "localnet, 3 miners, $device $ldtype" "FAIL" "$(tail -1 "$out/localnet.txt")"
fi
if [[ $mode == cpu ]]; then
  row "CPU-vs-GPU hash after the outer step" "skipped" "no GPU (Device.* ran CPU against CPU)"
elif grep -q '^\[       OK \] Device.OuterStepAndHashAreTheCpusBits' "$out/tests.txt"; then
  row "CPU-vs-GPU hash after the outer step" "equal" "Device.OuterStepAndHashAreTheCpusBits"
else
  fails=$((fails + 1)); row "CPU-vs-GPU hash after the outer step" "FAIL" "see tests.txt"
fi
row "total time" "$((SECONDS - start)) s" "$fails failure(s)"
cat "$table"
exit $((fails > 0))
