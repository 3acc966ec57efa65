#!/usr/bin/env bash
# cam1, cam2 and cam3 side by side, lined up by capture time: each tile of an output
# frame shows the same instant, whatever each camera's network and decoding delay, up
# to MAX_AGE (default 300 ms; frames older than that are dropped and counted).
# Usage: aligned-three.sh [SINK]   (default autovideosink; e.g. "fakesink" to run blind)
set -euo pipefail
sink=${1:-autovideosink}
age=${MAX_AGE:-300000000}
exec gst-launch-1.0 compositor name=mix sink_1::xpos=640 sink_2::xpos=1280 \
  ! video/x-raw,width=1920,height=360 ! videoconvert ! $sink \
  shmringsrc ring=cam1 timestamps=capture max-age="$age" ! videoscale ! video/x-raw,width=640,height=360 ! mix.sink_0 \
  shmringsrc ring=cam2 timestamps=capture max-age="$age" ! videoscale ! video/x-raw,width=640,height=360 ! mix.sink_1 \
  shmringsrc ring=cam3 timestamps=capture max-age="$age" ! videoscale ! video/x-raw,width=640,height=360 ! mix.sink_2
