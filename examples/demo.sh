#!/usr/bin/env bash
# The main job on the bundled example, end to end on this machine (run by `make demo`, as root):
#  1. compile xdp_drop once; inspect its globals; render a template with new defaults;
#  2. node-local mode: `bpfglobals apply -f examples/xdp_drop.yaml` attaches it to a veth whose
#     peer lives in a network namespace; real UDP traffic from there is dropped on the
#     configured port; a new drop_port swaps in a new variant atomically (same link, new
#     program ID, counters kept); a .data/.bss value is written live (same program ID).
set -euo pipefail
cd "$(dirname "$0")/.."
BG=.venv/bin/bpfglobals
PY=.venv/bin/python
OUT=build/examples
NS=bpfg-demo-peer
DEV=bpfg-demo0
PEER=bpfg-demo1
ROOT=${BPFGLOBALS_BPFFS_ROOT:-/sys/fs/bpf/bpfglobals}
mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
  $BG delete xdp-drop >/dev/null 2>&1 || true
  ip link del "$DEV" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rmdir "$ROOT" 2>/dev/null || true  # the state root, when nothing else is applied there
}
trap cleanup EXIT
counters() { # the pinned per-CPU stats map: [0]=pass [1]=drop, summed over CPUs
  bpftool -j map dump pinned "$ROOT/xdp-drop/maps/stats" | $PY -c '
import json, sys
tot = {int(e["key"][0], 16): sum(int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little")
                                 for v in e["values"]) for e in json.load(sys.stdin)}
print("counters: pass=%d drop=%d" % (tot[0], tot[1]))'
}
send() { # port count: UDP from the namespace to this host
  ip netns exec "$NS" $PY examples/udp_send.py "$HOST_IP" "$1" "$2" >/dev/null
  echo "sent $2 UDP datagrams to port $1"
}

step "compile once: clang -O2 -g -target bpf examples/xdp_drop.bpf.c"
clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu \
  -c examples/xdp_drop.bpf.c -o "$OUT/xdp_drop.bpf.o"

step "bpfglobals inspect: the globals are the configuration"
$BG inspect "$OUT/xdp_drop.bpf.o"

step "bpfglobals render: a template with drop_port=53 baked in (only .rodata bytes change)"
$BG render "$OUT/xdp_drop.bpf.o" -o "$OUT/xdp_drop-dns.bpf.o" --set drop_port=53
{ cmp -l "$OUT/xdp_drop.bpf.o" "$OUT/xdp_drop-dns.bpf.o" || true; } | wc -l | xargs echo "bytes changed:"

step "a test host: namespace $NS behind veth $DEV (198.51.100.0/24, TEST-NET-2)"
cleanup
HOST_IP=198.51.100.1
ip netns add "$NS"
ip link add "$DEV" type veth peer name "$PEER" netns "$NS"
sysctl -qw "net.ipv6.conf.$DEV.disable_ipv6=1"
ip addr add "$HOST_IP/24" dev "$DEV" && ip link set "$DEV" up
ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$PEER.disable_ipv6=1"
ip netns exec "$NS" ip addr add 198.51.100.2/24 dev "$PEER"
ip netns exec "$NS" ip link set "$PEER" up
ip neigh replace 198.51.100.2 lladdr "$(ip netns exec "$NS" cat /sys/class/net/$PEER/address)" dev "$DEV" nud permanent
ip netns exec "$NS" ip neigh replace "$HOST_IP" lladdr "$(cat /sys/class/net/$DEV/address)" dev "$PEER" nud permanent

step "bpfglobals apply -f examples/xdp_drop.yaml  (drop_port 9999, XDP generic on $DEV)"
sed "s/interface: bpfg-demo0/interface: $DEV/" examples/xdp_drop.yaml > "$OUT/xdp_drop.yaml"
sed -i "s|path: ../build/examples/|path: ./|" "$OUT/xdp_drop.yaml"
$BG apply -f "$OUT/xdp_drop.yaml"
$BG get -o wide
send 9999 1000
send 8080 500
counters

step "change drop_port to 8080: a new variant, swapped in atomically (same link, new program)"
sed -i "s/drop_port: 9999/drop_port: 8080/" "$OUT/xdp_drop.yaml"
$BG apply -f "$OUT/xdp_drop.yaml"
$BG get
send 9999 1000
send 8080 500
counters

step "change log_level (a .bss/.data global): written into the live map, same program ID"
sed -i "s/log_level: 0/log_level: 1/" "$OUT/xdp_drop.yaml"
$BG apply -f "$OUT/xdp_drop.yaml"
$BG get xdp-drop -o json | $PY -c 'import json,sys; d=json.load(sys.stdin); print("program", d["programs"][0]["id"], "globals", d["globals"])'

step "bpftool's independent view"
bpftool net show dev "$DEV"
bpftool map show pinned "$ROOT/xdp-drop/variants/$($BG get xdp-drop -o json | $PY -c 'import json,sys; print(json.load(sys.stdin)["variant"])')/maps/_rodata"

step "bpfglobals delete xdp-drop"
$BG delete xdp-drop
bpftool net show dev "$DEV"

step "the cluster: a local control plane (etcd + kube-apiserver), the operator and this machine's agent"
STATE=build/demo-cluster
$BG dev-cluster up --state-dir "$STATE"
eval "$($BG dev-cluster env --state-dir "$STATE")"
NODE=$(hostname | tr 'A-Z_' 'a-z-')
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: $NODE, labels: {bpfglobals.io/demo: "true"}}
YAML
$BG operator --listen 127.0.0.1 --metrics-port 0 --health-port 0 > "$OUT/operator.log" 2>&1 &
OPERATOR_PID=$!
$BG agent --node-name "$NODE" --listen 127.0.0.1 --metrics-port 0 --health-port 0 \
  --cache-dir "$OUT/elf-cache" > "$OUT/agent.log" 2>&1 &
AGENT_PID=$!
trap 'kill $OPERATOR_PID $AGENT_PID 2>/dev/null || true; $BG dev-cluster down --state-dir "$STATE" >/dev/null; cleanup' EXIT
kubectl -n default create configmap xdp-drop --from-file=xdp_drop.bpf.o="$OUT/xdp_drop.bpf.o" >/dev/null
sed "s/SHA256/$(sha256sum "$OUT/xdp_drop.bpf.o" | cut -d' ' -f1)/; s/interface: bpfg-demo0/interface: $DEV/" \
  examples/xdp_drop-cluster.yaml > "$OUT/xdp_drop-cluster.yaml"

step "kubectl apply -f examples/xdp_drop-cluster.yaml; kubectl wait --for=condition=Ready"
kubectl apply -f "$OUT/xdp_drop-cluster.yaml"
kubectl wait --for=condition=Ready bpfprogram/xdp-drop --timeout=60s
kubectl get bpfprograms
kubectl get bpfnodes
kubectl get bpfprogramnodes -l bpfglobals.io/program=xdp-drop
kubectl get bpfprogram xdp-drop -o jsonpath='{.status.nodes[0].maps}{"\n"}'
send 9999 100
counters

step "GitOps-style change: drop_port 9999 -> 8080 with kubectl apply; rolled out atomically"
sed -i "s/drop_port: 9999/drop_port: 8080/" "$OUT/xdp_drop-cluster.yaml"
kubectl apply -f "$OUT/xdp_drop-cluster.yaml"
kubectl wait --for=jsonpath='{.status.observedGeneration}'=2 bpfprogram/xdp-drop --timeout=60s
kubectl wait --for=condition=Ready bpfprogram/xdp-drop --timeout=60s
kubectl get bpfprograms
kubectl get bpfprogram xdp-drop -o jsonpath='{range .status.nodes[*].programs[*]}program {.name} id {.id} links {.links[*].id}{"\n"}{end}'

step "a bad value is refused at kubectl apply: the operator's admission webhook reads the object's BTF"
sed "s/drop_port: 8080/drop_port: 70000/" "$OUT/xdp_drop-cluster.yaml" > "$OUT/xdp_drop-bad.yaml"
if kubectl apply -f "$OUT/xdp_drop-bad.yaml"; then echo "unexpected: the bad value was accepted" >&2; exit 1; fi
echo "the same check offline, for CI (bpfglobals validate):"
$BG validate -f "$OUT/xdp_drop-bad.yaml" --elf "$OUT/xdp_drop.bpf.o" || [ $? -eq 2 ]

step "kubectl delete: the agent detaches and unpins before the object goes"
kubectl delete bpfprogram xdp-drop --timeout=60s
bpftool net show dev "$DEV"
echo
echo "demo done: one compile, configured by values, swapped without a gap, no recompilation."
