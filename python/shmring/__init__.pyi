from os import PathLike
from types import TracebackType
from typing import Any, Dict, Iterator, List, Literal, Optional, Type, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "PathLike[str]"]

class ShmringError(Exception): ...
class RingNotFound(ShmringError): ...
class WriterGone(ShmringError): ...
class EndOfStream(ShmringError): ...
class CorruptRing(ShmringError): ...
class HandleGone(ShmringError): ...
class NotYetWritten(ShmringError): ...
class BadHandle(ShmringError): ...
class BadName(ShmringError): ...

class Frame:
    """One frame of a ring; a context manager that gives its lease back on exit."""

    @property
    def seq(self) -> int: ...
    @property
    def pts(self) -> Optional[int]:
        """The writer's pts in ns, if it had one."""
    @property
    def captured_at(self) -> int:
        """Wall-clock capture time, ns since the Unix epoch."""
    @property
    def handle(self) -> str:
        """``ring:epoch:seq``, for ``Reader.get``."""
    @property
    def missed(self) -> int:
        """Frames skipped (latest) or lost (next) since the previous one returned."""
    @property
    def format(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def zero_copy(self) -> bool:
        """True while the array is the ring's own slot, leased."""
    @property
    def array(self) -> npt.NDArray[np.uint8]:
        """Read-only: (H, W) GRAY8, (H, W, C) packed RGB and the like, (H*3//2, W)
        tight 4:2:0 (I420, YV12, NV12, NV21), else 1-D."""
    @property
    def planes(self) -> List[npt.NDArray[np.uint8]]:
        """One read-only (rows, bytes) array per plane, with its real stride."""
    def copy(self) -> npt.NDArray[np.uint8]: ...
    def tobytes(self) -> bytes: ...
    def release(self) -> None: ...
    def __enter__(self) -> "Frame": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Reader:
    def __init__(self, ring: str, dir: Optional[_Path] = None, zero_copy: bool = True) -> None: ...
    def latest(self, timeout: Optional[float] = None) -> Optional[Frame]: ...
    def next(self, timeout: Optional[float] = None) -> Optional[Frame]: ...
    def get(self, handle: str) -> Frame: ...
    def at(
        self,
        captured_at: int,
        rule: Literal["nearest", "at-or-before", "at-or-after"] = "nearest",
    ) -> Frame: ...
    def frames(self, mode: Literal["latest", "next"] = "latest") -> Iterator[Frame]: ...
    @property
    def info(self) -> Dict[str, Any]: ...

class WriteFrame:
    """A frame being filled; a context manager that commits it on exit (drops it if
    the block raised). A committed frame never changes: with no view of its array left
    at the commit the slot is committed in place, else a copy of it is."""

    @property
    def array(self) -> npt.NDArray[np.uint8]:
        """Writable until the commit, read-only after; raises ShmringError once the
        frame is dropped or its writer closed."""
    @property
    def handle(self) -> Optional[str]: ...
    @property
    def zero_copy(self) -> bool:
        """Open: whether the frame is a slot of the ring. Committed: whether it was
        committed in place, without a copy."""
    def commit(self) -> str: ...
    def __enter__(self) -> "WriteFrame": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Writer:
    def __init__(
        self,
        ring: str,
        width: int,
        height: int,
        format: str,
        fps: float,
        slots: int = 0,
        dir: Optional[_Path] = None,
        lease_slots: int = 8,
        pool_slots: int = 2,
    ) -> None: ...
    @property
    def frame_size(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def write(
        self,
        array: npt.NDArray[np.uint8],
        pts: Optional[int] = None,
        captured_at: Optional[int] = None,
    ) -> str:
        """Any shape and memory order (taken in C order); ``pts`` and ``captured_at``
        in ns, 0 to 2**63 - 1."""
    def frame(self, pts: Optional[int] = None, captured_at: Optional[int] = None) -> WriteFrame: ...
    def eos(self) -> None: ...
    def close(self) -> None:
        """Removes and unmaps the ring at once (a slot whose views are alive stays mapped
        until they are gone); every method of a closed writer raises ShmringError."""
    def __enter__(self) -> "Writer": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...
