#!/usr/bin/env bash
# Builds the RTL twin with Verilator: build.sh FIRMWARE.bin OUT_DIR [--no-dsp]
# Writes OUT_DIR/crabwatt-twin. Rebuilds only when the generated Verilog or the harness changed
# (a Verilator build of VexRiscv + DSP takes minutes on two cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
image=$(realpath "${1:?usage: build.sh FIRMWARE.bin OUT_DIR [--no-dsp]}")
out=$(realpath -m "${2:?usage: build.sh FIRMWARE.bin OUT_DIR [--no-dsp]}")
shift 2
[[ -f "$image" ]] || { echo "build.sh: no firmware image at $image (run make -C firmware)" >&2; exit 1; }
python=${CRABWATT_PYTHON:-}
if [[ -z "$python" ]]; then
  bash "$root/hdl/venv.sh"
  python="$root/build/venv/bin/python"
fi
mkdir -p "$out"
# One build of a directory at a time: two test files (or a test and `serve --device rtl`) starting
# together would otherwise write the same Verilog, objects and binary at once. The lock is released
# when this script exits.
exec 9> "$out/.lock"
if ! flock -n 9; then
  echo "twin: waiting for another build of $out" >&2
  flock 9
fi
echo "twin: generating Verilog" >&2
(cd "$root/hdl" && "$python" -m crabwatt.soc.twin --image "$image" --out "$out/crabwatt_twin.v.new" --config-header "$out/crabwatt_twin_config.h" "$@")
vex=$("$python" -c 'from crabwatt.soc.cpu import verilog_path; print(verilog_path())' 2>/dev/null \
      || (cd "$root/hdl" && "$python" -c 'from crabwatt.soc.cpu import verilog_path; print(verilog_path())'))
flash_model="$root/firmware/test"   # the flash model the harness includes (shared with the native tests)
stamp=$(cat "$out/crabwatt_twin.v.new" "$out/crabwatt_twin_config.h" "$here/harness.cpp" "$here/flash_pins.h" "$here/adc_read.h" "$here/stimulus.h" "$vex" "$here/build.sh" \
        "$flash_model/flash_model.c" "$flash_model/flash_model.h" \
        | sha256sum | cut -d' ' -f1)
if [[ -x "$out/crabwatt-twin" && -f "$out/stamp" && "$(cat "$out/stamp")" == "$stamp" ]]; then
  echo "twin: up to date ($out/crabwatt-twin)" >&2
  rm "$out/crabwatt_twin.v.new"
  exit 0
fi
rm -f "$out/stamp"   # the binary is replaced below: stale until a build completes
mv "$out/crabwatt_twin.v.new" "$out/crabwatt_twin.v"
echo "twin: verilating (this takes a few minutes)" >&2
start=$(date +%s)
# Verilator compiles the model's hot code with OPT_FAST, -Os unless told. -march=native is safe
# because the twin is built on the machine that runs it (build/ is never shipped).
cflags="-O2 -march=native -std=c++17 -I$out -I$flash_model"
verilate() {   # verilate EXTRA_COMPILER_FLAGS
  rm -rf "$out/obj"
  verilator --cc --exe --build -j 2 -O3 --x-assign fast --x-initial fast --noassert \
    -Wno-fatal -Wno-lint -Wno-style -Wno-WIDTH \
    --top-module crabwatt_twin -Mdir "$out/obj" -o "$out/crabwatt-twin" \
    -CFLAGS "$cflags $1" -LDFLAGS "-lutil $1" -MAKEFLAGS "OPT_FAST=-O2 OPT_GLOBAL=-O2" \
    "$out/crabwatt_twin.v" "$vex" "$here/harness.cpp" > "$out/verilator.log" 2>&1 \
    || { tail -40 "$out/verilator.log" >&2; exit 1; }
}
if [[ " $* " == *" --no-dsp "* ]]; then
  verilate ""
else
  # The full twin is built twice, guided by a profile of the first build running mains-like samples
  # through the real firmware (gcc's -fprofile-use): ~10 % faster for one more compile. The profile
  # files are named after the object directory, so both builds use the same one.
  profile="$out/profile"
  rm -rf "$profile"
  verilate "-fprofile-generate -fprofile-update=single -fprofile-dir=$profile"
  "$python" - "$out/train.bin" <<'PY'
import math, struct, sys
# 20 mains-like cycles of 200 samples, current lagging: windows close, the firmware sends them.
with open(sys.argv[1], 'wb') as f:
    for n in range(4000):
        w = 2 * math.pi * n / 200
        f.write(struct.pack('<HH', 8192 + round(5000 * math.sin(w)), 8192 + round(2000 * math.sin(w - 0.3))))
PY
  "$out/crabwatt-twin" --stimulus "$out/train.bin" --no-pty --loop --max-seconds 0.05 > /dev/null 2>> "$out/verilator.log" \
    || { echo "twin: the profiling run failed (see $out/verilator.log)" >&2; exit 1; }
  verilate "-fprofile-use -fprofile-partial-training -Wno-missing-profile -fprofile-dir=$profile"
fi
echo "$stamp" > "$out/stamp"
echo "twin: built $out/crabwatt-twin in $(( $(date +%s) - start )) s" >&2
