#!/usr/bin/env bash
# The main job on the bundled example, end to end on this machine (run by `make demo`):
# compile xdp_drop once, inspect its globals, render a template with new defaults, load it with
# configured values through our own loader, check the kernel's view with bpftool, execute it
# with BPF_PROG_TEST_RUN for two packets, and unload.
set -euo pipefail
cd "$(dirname "$0")/.."
BG=.venv/bin/bpfglobals
PY=.venv/bin/python
OUT=build/demo
PIN=/sys/fs/bpf/bpfglobals-demo
mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
verdict() { # prog pin, packet file -> XDP verdict name
  local rc
  rc=$(bpftool -j prog run pinned "$1" data_in "$2" repeat 1 | $PY -c 'import json,sys; print(json.load(sys.stdin)["retval"])')
  case $rc in 1) echo "XDP_DROP" ;; 2) echo "XDP_PASS" ;; *) echo "retval $rc" ;; esac
}

step "compile once: clang -O2 -g -target bpf examples/xdp_drop.bpf.c"
clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu \
  -c examples/xdp_drop.bpf.c -o "$OUT/xdp_drop.bpf.o"

step "bpfglobals inspect: the globals are the configuration"
$BG inspect "$OUT/xdp_drop.bpf.o"

step "bpfglobals render: a template with drop_port=53 baked in (only .rodata bytes change)"
$BG render "$OUT/xdp_drop.bpf.o" -o "$OUT/xdp_drop-dns.bpf.o" --set drop_port=53
$BG inspect "$OUT/xdp_drop-dns.bpf.o" --json | $PY -c \
  'import json,sys; v={x["name"]: x["value"] for x in json.load(sys.stdin)["variables"]}; print("drop_port default now", v["drop_port"])'

step "bpfglobals load: our loader (pyelftools + cffi), values set at load time"
$BG unload "$PIN" >/dev/null 2>&1 || true
$BG load "$OUT/xdp_drop.bpf.o" --pin "$PIN" --set drop_port=53 --set log_level=1

step "bpftool's view: libbpf-style map names, .rodata frozen with flags 0x480"
bpftool map show pinned "$PIN/maps/_rodata"
bpftool map dump pinned "$PIN/maps/_rodata"

step "BPF_PROG_TEST_RUN: UDP to port 53 is dropped, to port 80 passes"
$PY examples/packet.py udp 53 > "$OUT/udp53.bin"
$PY examples/packet.py udp 80 > "$OUT/udp80.bin"
echo "udp dport 53 -> $(verdict "$PIN/programs/xdp_drop" "$OUT/udp53.bin")"
echo "udp dport 80 -> $(verdict "$PIN/programs/xdp_drop" "$OUT/udp80.bin")"

step "bpfglobals unload"
$BG unload "$PIN"
echo
echo "demo done: one compile, configured at load time, no recompilation."
