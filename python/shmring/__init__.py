"""Camera frames from shmring rings as numpy arrays, without GStreamer.

    import shmring

    reader = shmring.Reader("cam1")
    with reader.latest(timeout=1.0) as frame:
        frame.array        # read-only numpy view straight on the ring's slot

    with shmring.Writer("proc1", 640, 480, "BGRx", 30) as writer:
        writer.write(pixels)                    # a copy in
        with writer.frame() as f:               # or filled in place
            f.array[...] = pixels

A frame's array is never torn: while the frame holds its lease (inside its ``with``
block) the writer does not reuse the slot, and a frame that cannot lease is a copy.

A committed frame never changes either. ``f.array`` and the views made from it are
writable until the commit; if none is left by then (write through ``f.array[...]``, or
``del`` the names bound to it) the slot is committed in place, else a copy of it is,
and whatever those views write afterwards reaches no reader. ``close()`` unmaps the
ring at once, and every method of a closed writer raises ``ShmringError``.
"""

from ._shmring import (
    BadHandle,
    BadName,
    CorruptRing,
    EndOfStream,
    Frame,
    HandleGone,
    NotYetWritten,
    Reader,
    RingNotFound,
    ShmringError,
    WriteFrame,
    Writer,
    WriterGone,
)

__all__ = [
    "BadHandle",
    "BadName",
    "CorruptRing",
    "EndOfStream",
    "Frame",
    "HandleGone",
    "NotYetWritten",
    "Reader",
    "RingNotFound",
    "ShmringError",
    "WriteFrame",
    "Writer",
    "WriterGone",
]
