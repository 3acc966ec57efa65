#!/usr/bin/env bash
# Runs the benchmark: every scenario over shmringsink/shmringsrc and over GStreamer's
# shmsink/shmsrc in one run; prints the table, writes bench-results/results.json and
# bench-results/bench.png. Usage: scripts/bench.sh [--quick] [--out DIR]
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

cargo run --release --locked -q -p shmring-bench -- "$@"
/usr/bin/python3 scripts/plot-bench.py "$out/results.json" "$out/bench.png"
echo "plot: $out/bench.png"
