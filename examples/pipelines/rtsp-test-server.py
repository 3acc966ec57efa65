#!/usr/bin/python3
"""Embedded test RTSP server: three distinct H.264 "cameras" on loopback.

    rtsp://127.0.0.1:PORT/cam1  (bouncing ball)
    rtsp://127.0.0.1:PORT/cam2  (SMPTE bars)
    rtsp://127.0.0.1:PORT/cam3  (pinwheel)

Usage: rtsp-test-server.py [PORT]   (default 8554). Runs until SIGINT/SIGTERM.
"""
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

CAMERAS = {"cam1": "ball", "cam2": "smpte", "cam3": "pinwheel"}


def main():
    port = sys.argv[1] if len(sys.argv) > 1 else "8554"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    mounts = server.get_mount_points()
    for name, pattern in CAMERAS.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f"( videotestsrc is-live=true pattern={pattern} "
            "! video/x-raw,width=640,height=360,framerate=30/1 "
            f"! clockoverlay halignment=left valignment=bottom text={name} "
            "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=1500 "
            "! rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(True)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        print(f"rtsp-test-server: cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        sys.exit(1)
    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"rtsp-test-server: serving {', '.join(f'rtsp://127.0.0.1:{port}/{c}' for c in CAMERAS)}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
