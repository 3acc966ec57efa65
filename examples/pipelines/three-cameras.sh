#!/usr/bin/env bash
# The three-camera graph as plain gst-launch-1.0 processes:
#   3 cameras (RTSP -> parsebin -> shmringsink camN-h264, the camera's own H.264
#              kept 30 s for look-back; and -> decodebin -> shmringsink camN)
#   3 stages  (shmringsrc camN -> scale / colour / edges -> shmringsink procN)
#   1 mosaic  (all six rings tiled with name, fps, latency; PNG; a window if a display exists)
#   1 aligned stage (cam1..3 side by side by capture time; the skew between tiles)
# Without CAM1_URL..CAM3_URL it starts the embedded test RTSP server on loopback.
#
# Usage: three-cameras.sh [SECONDS]   (0 or nothing: until Ctrl-C)
# Env:   CAM1_URL CAM2_URL CAM3_URL  real cameras; OUT_DIR (default ./out); RTSP_PORT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-0}
out=${OUT_DIR:-$PWD/out}
port=${RTSP_PORT:-8554}
mkdir -p "$out"
: "${GST_PLUGIN_PATH:?set GST_PLUGIN_PATH to the directory holding libgstshmring.so}"
python=/usr/bin/python3

pids=()
cleanup() {
  # SIGINT: gst-launch -e turns it into EOS, then exits cleanly.
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -INT "${pids[$i]}" 2>/dev/null || true; done
  status=0
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "three-cameras: process $pid did not stop within 5 s" >&2; kill -KILL "$pid" 2>/dev/null || true; status=1
    else
      wait "$pid" 2>/dev/null || true
    fi
  done
  return $status
}
trap 'cleanup; exit 130' INT TERM

if [ -z "${CAM1_URL:-}${CAM2_URL:-}${CAM3_URL:-}" ]; then
  "$python" "$here/rtsp-test-server.py" "$port" > "$out/rtsp-server.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do grep -q serving "$out/rtsp-server.log" 2>/dev/null && break; sleep 0.1; done
fi
for n in 1 2 3; do
  var="CAM${n}_URL"
  url=${!var:-rtsp://127.0.0.1:$port/cam$n}
  "$here/camera.sh" "$n" "$url" > "$out/cam$n.log" 2>&1 &
  pids+=($!)
done
for n in 1 2 3; do
  "$here/process.sh" "$n" > "$out/proc$n.log" 2>&1 &
  pids+=($!)
done

"$python" "$here/aligned.py" --seconds "$seconds" --summary "$out/aligned.json" cam1 cam2 cam3 \
  > "$out/aligned.log" 2>&1 &
aligned=$!

window=()
[ -n "${DISPLAY:-}" ] && window=(--window)
set +e
"$python" "$here/mosaic.py" --seconds "$seconds" --png "$out/mosaic.png" --summary "$out/summary.json" "${window[@]}" \
  cam1 cam2 cam3 proc1 proc2 proc3
mosaic=$?
kill -INT "$aligned" 2>/dev/null
wait "$aligned"; aligned_status=$?
set -e
trap - INT TERM
# What the encoded rings hold (bit rate, GOP, look-back), while their writers live.
if command -v shmring > /dev/null; then
  for n in 1 2 3; do shmring stat --json "cam$n-h264" > "$out/cam$n-h264.json" || true; done
fi
cleanup; stopped=$?
echo "three-cameras: mosaic in $out/mosaic.png, figures in $out/summary.json and $out/aligned.json"
[ -f "$out/aligned.json" ] && echo "aligned by capture time: $(cat "$out/aligned.json" | tr -d '\n ')"
[ "$mosaic" -eq 0 ] && [ "$aligned_status" -eq 0 ] && [ "$stopped" -eq 0 ]
