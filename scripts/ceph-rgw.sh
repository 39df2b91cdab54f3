#!/usr/bin/env bash
# A throwaway single-node Ceph RGW (a real S3 server) for the tests and benchmarks of the
# S3 blob store: one monitor, one RAM-backed OSD and radosgw on loopback, in a scratch
# directory, ready in about 12 s.
#
#   scripts/ceph-rgw.sh start DIR   starts it; prints the endpoint (also in DIR/endpoint)
#   scripts/ceph-rgw.sh stop DIR    stops it and removes DIR
#
# Access key "testkey", secret "testsecret"; path-style addressing, signature v4. The
# monitor and radosgw take free loopback ports, so several can run on one machine.
# Needs the Debian packages ceph-mon ceph-osd radosgw ceph-common (scripts/bootstrap.sh).
set -euo pipefail

cmd=${1:?usage: ceph-rgw.sh start|stop DIR}
D=${2:?usage: ceph-rgw.sh start|stop DIR}
OSD_BYTES=${CEPH_RGW_OSD_BYTES:-2147483648}

stop() {
  local pids=()
  for f in "$D"/run/*.pid; do
    [ -f "$f" ] && pids+=("$(cat "$f")")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 50); do
      alive=0
      for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ $alive -eq 0 ] && break
      sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
  fi
  rm -rf "$D"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "ceph-rgw: $what did not come up; logs in $D" >&2
      exit 1
    fi
    sleep 0.5
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: ceph-rgw.sh start|stop DIR" >&2; exit 2; }

rm -rf "$D"
mkdir -p "$D"/{mon,osd0,rgw,run}
D=$(cd "$D" && pwd)
trap 'status=$?; [ $status -eq 0 ] || stop; exit $status' EXIT
MON_PORT=$(free_port)
PORT=$(free_port)
FSID=$(python3 -c "import uuid; print(uuid.uuid4())")
C=$D/ceph.conf
K=$D/keyring
cat >"$C" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
public addr = 127.0.0.1
keyring = $K
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 5
mon data avail crit = 1
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = $OSD_BYTES
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/\$name.log
pid file = $D/run/\$name.pid
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
[mon.a]
mon data = $D/mon
[osd.0]
osd data = $D/osd0
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $D/rgw
# Deleted objects' space comes back within seconds, not hours (the OSD is in RAM).
rgw gc obj min wait = 5
rgw gc processor period = 5
EOF
caps=(--cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *')
ceph-authtool --create-keyring "$K" --gen-key -n mon. --cap mon 'allow *' >/dev/null
for e in client.admin osd.0 client.rgw.a; do
  ceph-authtool "$K" --gen-key -n "$e" "${caps[@]}" >/dev/null
done
monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$D/monmap" >/dev/null
ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" --keyring "$K"
ceph-mon -c "$C" -i a
wait_for 60 "the monitor" timeout 5 ceph -c "$C" -s
for e in osd.0 client.rgw.a; do
  printf '[%s]\n\tkey = %s\n\tcaps mon = "allow *"\n\tcaps osd = "allow *"\n\tcaps mgr = "allow *"\n' \
    "$e" "$(ceph-authtool "$K" -n "$e" --print-key)" >"$D/$e.keyring"
  ceph -c "$C" auth import -i "$D/$e.keyring" 2>/dev/null
done
OSD_UUID=$(python3 -c "import uuid; print(uuid.uuid4())")
ceph -c "$C" osd new "$OSD_UUID" >/dev/null
ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$OSD_UUID" 2>/dev/null
ceph-osd -c "$C" -i 0 2>>"$D/osd-start.log"
radosgw -c "$C" -n client.rgw.a
wait_for 90 "radosgw" curl -sf -o /dev/null "http://127.0.0.1:$PORT"
radosgw-admin -c "$C" user create --uid=test --display-name=test \
  --access-key=testkey --secret=testsecret >/dev/null
echo "http://127.0.0.1:$PORT" >"$D/endpoint"
cat "$D/endpoint"
