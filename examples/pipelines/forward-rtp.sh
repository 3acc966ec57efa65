#!/usr/bin/env bash
# Forwards a ring to another machine over RTP/UDP (H.264) with GStreamer's own network
# elements, and turns the stream back into a ring there.
#
#   forward-rtp.sh send RING HOST PORT      on the machine that has the ring
#   forward-rtp.sh receive PORT RING        on the machine that wants it
set -euo pipefail
case "${1:-}" in
  send)
    ring=$2 host=$3 port=$4
    exec gst-launch-1.0 -e shmringsrc ring="$ring" ! videoconvert ! video/x-raw,format=I420 \
      ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 \
      ! rtph264pay config-interval=1 pt=96 ! udpsink host="$host" port="$port"
    ;;
  receive)
    port=$2 ring=$3
    exec gst-launch-1.0 -e udpsrc port="$port" \
      caps="application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96" \
      ! rtpjitterbuffer latency=50 ! rtph264depay ! avdec_h264 ! videoconvert ! shmringsink ring="$ring"
    ;;
  *)
    echo "usage: forward-rtp.sh send RING HOST PORT | receive PORT RING" >&2
    exit 2
    ;;
esac
