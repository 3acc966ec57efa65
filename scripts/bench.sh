#!/usr/bin/env bash
# Runs the benchmark: every scenario over shmringsink/shmringsrc and over GStreamer's
# shmsink/shmsrc in one run; prints the table, writes bench-results/results.json and
# bench-results/bench.png. Usage: scripts/bench.sh [--quick] [--out DIR] [--only ...]
# [--huge-pages-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! dpkg-query -W -f='${Status}' python3-matplotlib 2>/dev/null | grep -q "install ok installed"; then
  [ "$(id -u)" -eq 0 ] && sudo="" || sudo=sudo
  $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends python3-matplotlib
fi
out=bench-results
args=("$@")
for ((i=0; i<${#args[@]}; i++)); do [ "${args[$i]}" = --out ] && out=${args[$((i+1))]}; done

# max1080-huge wants shmring's rings on a tmpfs with huge pages. As root, mount a private
# one for the run (huge=advise: pages are huge where the ring's writer asks for them).
huge=()
if [[ " $* " != *" --huge-pages-dir "* ]] && [ "$(id -u)" -eq 0 ]; then
  hugedir=$(mktemp -d /tmp/shmring-bench-huge.XXXXXX)
  if mount -t tmpfs -o huge=advise,size=1g,mode=0700 tmpfs "$hugedir" 2>/dev/null; then
    trap 'umount "$hugedir"; rmdir "$hugedir"' EXIT
    huge=(--huge-pages-dir "$hugedir")
  else
    rmdir "$hugedir"
    echo "bench: cannot mount a huge-page tmpfs here; max1080-huge is left out"
  fi
fi
cargo run --release --locked -q -p shmring-bench -- "$@" "${huge[@]}"
/usr/bin/python3 scripts/plot-bench.py "$out/results.json" "$out/bench.png"
echo "plot: $out/bench.png"
