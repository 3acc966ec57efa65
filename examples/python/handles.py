#!/usr/bin/python3
"""A PyGObject application that embeds shmringsink and shmringsrc and passes frames by
handle, the way an analytics app would pass them over its own message bus.

The writer pipeline posts a handle for every committed frame; the application keeps
every third one and asks a reader pipeline (mode=handle) for exactly those frames, then
checks that each delivered buffer is the frame its handle named (its offset is the
frame's sequence number).

Usage: handles.py [RING]   (needs GST_PLUGIN_PATH to find libgstshmring.so)
Exit status 0 when every requested frame came back, 1 otherwise.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

FRAMES = 30
# Generous: under qemu-user a second of video can take many seconds.
TIMEOUT_S = 40


def main():
    ring = sys.argv[1] if len(sys.argv) > 1 else "py-handles"
    Gst.init(None)
    writer = Gst.parse_launch(
        f"videotestsrc is-live=true num-buffers={FRAMES} ! video/x-raw,width=160,height=120,framerate=30/1 "
        f"! shmringsink ring={ring} post-handles=true slots=64"
    )
    reader = Gst.parse_launch(f"shmringsrc name=src ring={ring} mode=handle ! appsink name=out emit-signals=true sync=false")
    src = reader.get_by_name("src")
    wanted, got = {}, {}
    loop = GLib.MainLoop()

    writer_done = [False]
    timed_out = [False]

    def finish_if_done():
        # Runs on the main loop only: `wanted` and `writer_done` change there, so this
        # test cannot see one of them updated and the other not.
        if writer_done[0] and set(wanted) <= set(got):
            loop.quit()

    def received(offset):
        got[offset] = True
        finish_if_done()
        return GLib.SOURCE_REMOVE

    def on_sample(sink):
        # appsink calls this on its streaming thread: hand the offset to the main loop.
        sample = sink.emit("pull-sample")
        GLib.idle_add(received, sample.get_buffer().offset)
        return Gst.FlowReturn.OK

    def on_timeout():
        timed_out[0] = True
        loop.quit()
        return GLib.SOURCE_REMOVE

    def on_writer_message(_bus, msg):
        if msg.type == Gst.MessageType.ELEMENT and msg.get_structure().get_name() == "shmringsink-handle":
            s = msg.get_structure()
            seq = s.get_value("seq")
            if seq % 3 == 0:
                handle = s.get_value("handle")
                wanted[seq] = handle
                if not src.emit("request-frame", handle):
                    print(f"handles.py: request-frame refused {handle}", file=sys.stderr)
        elif msg.type == Gst.MessageType.EOS:
            writer_done[0] = True
            finish_if_done()
        elif msg.type == Gst.MessageType.ERROR:
            print(f"handles.py: writer error: {msg.parse_error()[0].message}", file=sys.stderr)
            loop.quit()

    def on_reader_message(_bus, msg):
        if msg.type == Gst.MessageType.ERROR:
            print(f"handles.py: reader error: {msg.parse_error()[0].message}", file=sys.stderr)
            loop.quit()

    reader.get_by_name("out").connect("new-sample", on_sample)
    for pipeline, handler in ((writer, on_writer_message), (reader, on_reader_message)):
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", handler)
    reader.set_state(Gst.State.PLAYING)
    writer.set_state(Gst.State.PLAYING)
    GLib.timeout_add_seconds(TIMEOUT_S, on_timeout)
    loop.run()
    # Keep the ring until the reader has what it asked for, then stop both.
    reader.set_state(Gst.State.NULL)
    writer.set_state(Gst.State.NULL)

    missing = sorted(set(wanted) - set(got))
    extra = sorted(set(got) - set(wanted))
    print(f"handles.py: requested {len(wanted)} frames by handle, received {len(got)}")
    if missing or extra or not wanted:
        why = f" after {TIMEOUT_S} s (timed out)" if timed_out[0] else ""
        print(f"handles.py: missing {missing}, unexpected {extra}{why}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
