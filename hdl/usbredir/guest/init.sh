#!/bin/busybox sh
# The guest of `bash hdl/run.sh linux-usb` (server/twin/linux-usb.ts): loads the modules the USB
# device needs, then obeys one-line commands from the host on the virtio port "crabwatt.ctl" and
# answers each with lines "cw KEY VALUE..." ending in "cw done CMD" (or "cw fail CMD REASON").
# The port "crabwatt.data" carries the device's /dev/ttyACM* bytes both ways once `bridge` has run.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/load-order); do
  insmod "/lib/modules/$m" || echo "cw-init: insmod $m failed"
done

wait_for() {   # wait_for TENTHS COMMAND...: until COMMAND succeeds
  t=$1; shift
  while ! "$@" > /dev/null 2>&1; do
    t=$((t - 1)); [ $t -le 0 ] && return 1
    sleep 0.1
  done
}
port() {   # the /dev node of the virtio port named $1
  for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && { echo "/dev/${p##*/}"; return 0; }
  done
  return 1
}
n=0
until ctl=$(port crabwatt.ctl) && data=$(port crabwatt.data); do
  n=$((n + 1)); [ $n -gt 300 ] && { echo "cw-init: no virtio ports"; poweroff -f; }
  sleep 0.1
done
exec 3<>"$ctl" 4<>"$data"
# usbmon's binary interface (every bus) to the port "crabwatt.usbmon" when the host offers it: the
# host writes it out as a pcap (server/twin/usbmon-pcap.ts). devtmpfs makes the node when usbmon loads.
if mon=$(port crabwatt.usbmon) && wait_for 50 test -c /dev/usbmon0; then
  cat /dev/usbmon0 > "$mon" &
fi
say() { echo "cw $*" >&3; }

device() {   # the sysfs directory of the crabwatt (VID 1209), or nothing
  for d in /sys/bus/usb/devices/*; do
    [ "$(cat "$d/idVendor" 2>/dev/null)" = 1209 ] && { echo "$d"; return 0; }
  done
  return 1
}
tty_name() {   # the tty cdc_acm made for the device (ttyACM0 unless an old one is still held open)
  d=$(device) && ls "$d:1.0/tty" 2>/dev/null
}
has_tty() { t=$(tty_name) && [ -n "$t" ] && [ -c "/dev/$t" ]; }
bridge_stop() {
  [ -n "$bridge" ] && kill $bridge 2> /dev/null
  bridge=
}
bridge_start() {
  bridge_stop
  wait_for 600 has_tty || return 1
  tty=/dev/$(tty_name)
  # Line coding and control lines as a terminal program sets them (SET_LINE_CODING, DTR/RTS).
  stty -F "$tty" raw -echo 3000000 || return 1
  exec 5<>"$tty"
  cat <&5 >&4 &
  bridge=$!
  cat <&4 >&5 &
  bridge="$bridge $!"
  exec 5>&-
}
info() {
  d=$(device) || return 1
  say kernel "$(uname -r)"
  for f in idVendor idProduct bDeviceClass bDeviceSubClass bDeviceProtocol bcdDevice bNumConfigurations \
           bConfigurationValue bNumInterfaces bMaxPacketSize0 speed manufacturer product serial busnum devnum; do
    say "$f" "$(cat "$d/$f" 2>/dev/null)"
  done
  say descriptors "$(od -An -v -tx1 "$d/descriptors" | tr -d ' \n')"
  for i in "$d":*; do
    say interface "${i##*/}" "$(cat "$i/bInterfaceClass")" "$(cat "$i/bInterfaceSubClass")" \
        "$(readlink "$i/driver" | sed 's,.*/,,')" "$(ls "$i/tty" 2>/dev/null)"
  done
  for s in $(grep -l . "$d"/*:*/ep_*/direction 2>/dev/null); do
    e=${s%/direction}
    say endpoint "${e##*/}" "$(cat "$e/type")" "$(cat "$e/wMaxPacketSize")"
  done
}

while :; do
  # Reads end (EOF) while no host holds the port's socket: wait for one.
  read -r cmd arg <&3 || { sleep 0.2; continue; }
  case "$cmd" in
    enumerated) if wait_for 1200 device; then info; say done "$cmd"; else say fail "$cmd" no device 1209; fi ;;
    info) if info; then say done "$cmd"; else say fail "$cmd" no device; fi ;;
    bridge) if bridge_start; then say done "$cmd"; else say fail "$cmd" no ttyACM for the device; fi ;;
    unbind)
      bridge_stop
      d=$(device) && i=${d##*/}:1.0 && echo "$i" > /sys/bus/usb/drivers/cdc_acm/unbind \
        && wait_for 100 eval '! has_tty' && say done "$cmd" || say fail "$cmd" unbind ;;
    bind)
      d=$(device) && echo "${d##*/}:1.0" > /sys/bus/usb/drivers/cdc_acm/bind && wait_for 100 has_tty \
        && say done "$cmd" || say fail "$cmd" bind ;;
    reset)
      d=$(device) && node=$(printf '/dev/bus/usb/%03d/%03d' "$(cat "$d/busnum")" "$(cat "$d/devnum")") \
        && usbreset "$node" && say done "$cmd" || say fail "$cmd" usbreset ;;
    dmesg) dmesg | grep -i -E 'usb|acm|xhci' | while read -r line; do say kernel-log "$line"; done; say done "$cmd" ;;
    poweroff) bridge_stop; say done "$cmd"; sync; poweroff -f ;;
    *) say fail "$cmd" unknown command ;;
  esac
done
