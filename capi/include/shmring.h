/* libshmring: read and write shmring rings from C, without GStreamer.
 *
 * Generated from capi/src by cbindgen (scripts/capi-header.sh); do not edit.
 * The reference is docs/c.md. Link with `pkg-config --cflags --libs shmring`. */

#ifndef SHMRING_H
#define SHMRING_H

#include <stddef.h>
#include <stdint.h>

// A frame was returned (or the call succeeded).
#define SHMRING_OK 0

// No frame came before the timeout.
#define SHMRING_TIMEOUT 1

// The frame named is not written yet.
#define SHMRING_NOT_YET 2

// The frame named was overwritten, or is of a writer that is gone.
#define SHMRING_GONE 3

// No time: a frame without a pts, or "now" for a capture time given to a writer.
#define SHMRING_NO_TIME UINT64_MAX

// Bytes that hold any handle with its terminating NUL.
#define SHMRING_HANDLE_SIZE 4097

// `shmring_reader_open_with` flag: copy every frame, never lease one in place.
#define SHMRING_READ_COPY 1

// `shmring_reader_at` rules: the frame captured closest to the time, the last one at
// or before it, or the first one at or after it.
#define SHMRING_AT_NEAREST 0

#define SHMRING_AT_OR_BEFORE 1

#define SHMRING_AT_OR_AFTER 2

// `shmring_ring_info.writer_status`.
#define SHMRING_WRITER_LIVE 0

#define SHMRING_WRITER_EOS 1

#define SHMRING_WRITER_CLOSED 2

#define SHMRING_WRITER_REPLACED 3

#define SHMRING_WRITER_DEAD 4

// A frame read from a ring (opaque).
typedef struct shmring_frame shmring_frame;

// A reader of one ring (opaque).
typedef struct shmring_reader shmring_reader;

// A frame being written in place (opaque).
typedef struct shmring_write_frame shmring_write_frame;

// A writer of one ring (opaque).
typedef struct shmring_writer shmring_writer;

// What a ring says of itself (`shmring_reader_info`). Numbers the ring's caps do not
// give are 0, and `format` is then "".
typedef struct {
  uint32_t width;
  uint32_t height;
  // Frames per second, 0 when unknown.
  double fps;
  // GStreamer's name of the pixel format (`I420`, `BGRx`, ...), NUL-terminated.
  char format[32];
  uint32_t slots;
  uint32_t writer_pid;
  // `SHMRING_WRITER_*`.
  int writer_status;
  // The writer's epoch: a new one each time the ring is made anew.
  uint64_t epoch;
} shmring_ring_info;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The message of the last call of this thread that failed ("" when none did): what
// was wrong and with which ring. Valid until the next call of this thread that fails.
const char *shmring_last_error(void);

// Opens ring `ring` (a name, or an absolute path to a ring file) in `dir` (NULL: the
// default, `$SHMRING_DIR` or `/dev/shm/shmring-<uid>`). Frames are leased in place.
// NULL on error (see `shmring_last_error`): no such ring, not a ring, no permission.
//
// # Safety
// `ring` and `dir` are NULL or NUL-terminated strings.
shmring_reader *shmring_reader_open(const char *ring, const char *dir);

// As `shmring_reader_open`, with `flags`: `SHMRING_READ_COPY` copies every frame.
//
// # Safety
// As `shmring_reader_open`.
shmring_reader *shmring_reader_open_with(const char *ring, const char *dir, uint32_t flags);

// The newest frame not returned yet, skipping what this reader missed, waiting up to
// `timeout_ms` (negative: for ever) for it. `SHMRING_OK` with the frame in `*out`,
// `SHMRING_TIMEOUT`, or a negative errno: `-ENODATA` when the stream ended, `-EPIPE`
// when the writer is gone and no new one came in time, `-EBADF` when the reader is not
// open (or was closed by another thread during the wait). A restarted writer is
// followed. `*out` is NULL unless a frame is returned.
//
// # Safety
// `out` is NULL or points to a `shmring_frame *` to set.
int shmring_reader_latest(shmring_reader *r, int64_t timeout_ms, shmring_frame **out);

// As `shmring_reader_latest`, for every frame in order: `shmring_frame_missed` counts
// those lost to a writer that lapped this reader.
//
// # Safety
// As `shmring_reader_latest`.
int shmring_reader_next(shmring_reader *r, int64_t timeout_ms, shmring_frame **out);

// Exactly the frame `handle` names (as `shmring_frame_handle` or a writer gave it),
// copied, without waiting: `SHMRING_OK`, `SHMRING_NOT_YET`, `SHMRING_GONE`
// (overwritten, or of a writer that is gone), or `-EINVAL` for a handle that is not
// one or names another ring.
//
// # Safety
// `handle` is NULL or a NUL-terminated string; `out` as for `shmring_reader_latest`.
int shmring_reader_get(shmring_reader *r, const char *handle, shmring_frame **out);

// The frame captured closest to `captured_at_ns` (ns since the Unix epoch) by `rule`
// (`SHMRING_AT_*`), copied: `SHMRING_OK`, `SHMRING_NOT_YET` (none captured that late
// yet) or `SHMRING_GONE` (overwritten).
//
// # Safety
// As `shmring_reader_latest`.
int shmring_reader_at(shmring_reader *r, uint64_t captured_at_ns, int rule, shmring_frame **out);

// Fills `*info` with what the ring says of itself now.
//
// # Safety
// `info` is NULL or points to a `shmring_ring_info` to fill.
int shmring_reader_info(shmring_reader *r, shmring_ring_info *info);

// The ring's caps (GStreamer's text for what its frames are) into `buf` of `size`
// bytes, as snprintf does: returns the caps' length, `size` or more when cut; "" when
// the ring has none.
//
// # Safety
// `buf` is NULL or valid for writing `size` bytes.
int shmring_reader_caps(shmring_reader *r, char *buf, size_t size);

// Closes the reader. A read waiting in another thread returns `-EBADF` at once; frames
// not released yet stay valid. Closing NULL or a closed reader does nothing.
void shmring_reader_close(shmring_reader *r);

// Ends the frame's lease (or frees its copy): its data pointer is not to be used
// again. Releasing NULL or a released frame does nothing.
void shmring_frame_release(shmring_frame *f);

// The frame's bytes (`shmring_frame_size` of them), valid until it is released; NULL
// for a frame that is not one. Read-only: in place, they are the ring's own memory.
const uint8_t *shmring_frame_data(const shmring_frame *f);

// Bytes of the frame (0 for a frame that is not one).
size_t shmring_frame_size(const shmring_frame *f);

// The frame's sequence number in its writer's epoch (from 1).
uint64_t shmring_frame_seq(const shmring_frame *f);

// The epoch of the writer that wrote the frame.
uint64_t shmring_frame_epoch(const shmring_frame *f);

// When the frame was captured: ns since the Unix epoch.
uint64_t shmring_frame_captured_at(const shmring_frame *f);

// The frame's pts in ns, `SHMRING_NO_TIME` when it has none.
uint64_t shmring_frame_pts(const shmring_frame *f);

// The frame's duration in ns, `SHMRING_NO_TIME` when it has none.
uint64_t shmring_frame_duration(const shmring_frame *f);

// Frames between the previous one this reader returned and this one that it did not
// return (skipped by `latest`, lost to the writer by `next`).
uint64_t shmring_frame_missed(const shmring_frame *f);

// 1 when the frame is read in place (leased), 0 when it is a copy or not a frame.
int shmring_frame_is_in_place(const shmring_frame *f);

// Width in pixels (0 when the ring's frames are not raw video).
uint32_t shmring_frame_width(const shmring_frame *f);

// Height in pixels (0 when the ring's frames are not raw video).
uint32_t shmring_frame_height(const shmring_frame *f);

// GStreamer's name of the frame's pixel format (`I420`, `NV12`, `BGRx`, ...): a
// static string, "" when the format is not one libshmring knows; NULL for a frame
// that is not one.
const char *shmring_frame_format(const shmring_frame *f);

// Planes of the frame (1 for packed formats, 2 or 3 for planar ones).
uint32_t shmring_frame_n_planes(const shmring_frame *f);

// Where plane `plane` starts in the frame's bytes (0 for a plane it does not have).
size_t shmring_frame_plane_offset(const shmring_frame *f, uint32_t plane);

// Bytes from one row of plane `plane` to the next (0 for a plane it does not have).
int32_t shmring_frame_plane_stride(const shmring_frame *f, uint32_t plane);

// The frame's handle (`ring:epoch:seq`, which `shmring_reader_get` in any process
// takes back) into `buf` of `size` bytes, as snprintf does: `SHMRING_HANDLE_SIZE`
// always holds it. Returns its length, or a negative errno.
//
// # Safety
// `buf` is NULL or valid for writing `size` bytes.
int shmring_frame_handle(const shmring_frame *f, char *buf, size_t size);

// Creates ring `ring` in `dir` (NULL: the default) for `width` x `height` frames of
// `format` (a GStreamer format name: I420, NV12, YV12, NV21, GRAY8, GRAY16_LE, RGB,
// BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR) at `fps` frames a second, with
// `slots` slots (0: half a second's worth). NULL on error: a bad argument
// (`shmring_last_error` names it), or `-EBUSY` when another live writer has the ring.
// A dead writer's ring of that name is replaced.
//
// # Safety
// `ring`, `dir` and `format` are NULL or NUL-terminated strings.
shmring_writer *shmring_writer_open(const char *ring,
                                    const char *dir,
                                    const char *format,
                                    int64_t width,
                                    int64_t height,
                                    double fps,
                                    int64_t slots);

// Bytes of one frame in GStreamer's default layout for the ring's format and size:
// what `shmring_writer_write` takes (0 for a writer that is not one).
size_t shmring_writer_frame_size(const shmring_writer *w);

// Copies `size` bytes at `data` (exactly `shmring_writer_frame_size`) into the ring as
// its next frame. `pts` in ns or `SHMRING_NO_TIME`; `captured_at_ns` in ns since the
// Unix epoch, or `SHMRING_NO_TIME` for now. The frame's handle goes to `handle` (NULL,
// or `handle_size` bytes: `SHMRING_HANDLE_SIZE` holds any). 0 or a negative errno.
//
// # Safety
// `data` is NULL or valid for reading `size` bytes; `handle` is NULL or valid for
// writing `handle_size` bytes.
int shmring_writer_write(shmring_writer *w,
                         const uint8_t *data,
                         size_t size,
                         uint64_t pts,
                         uint64_t captured_at_ns,
                         char *handle,
                         size_t handle_size);

// A frame to fill in place: a slot of the ring when one can be lent, else a buffer of
// its own (copied in at the commit). Fill `shmring_write_frame_data`, then commit or
// abort it. NULL on error.
shmring_write_frame *shmring_writer_begin(shmring_writer *w);

// The bytes to fill (`shmring_write_frame_size` of them), in GStreamer's default
// layout; NULL for a frame that is not one. Not to be written after the commit.
uint8_t *shmring_write_frame_data(shmring_write_frame *f);

// Bytes of the frame being written.
size_t shmring_write_frame_size(const shmring_write_frame *f);

// 1 when the frame is a slot of the ring (committed without a copy), 0 when it is a
// buffer of its own, or not a frame being written.
int shmring_write_frame_is_in_place(const shmring_write_frame *f);

// Commits the frame with its stamps (as `shmring_writer_write`) and ends it. When the
// stamps are invalid (`-EINVAL`), `handle_size` is too small (`-ERANGE`) or another
// thread is using the writer (`-EBUSY`), nothing is written and the frame stays, to
// be committed again or aborted; on any other error it has ended. `-EBADF` when its
// writer was closed meanwhile (the frame has ended).
//
// # Safety
// `handle` is NULL or valid for writing `handle_size` bytes.
int shmring_write_frame_commit(shmring_write_frame *f,
                               uint64_t pts,
                               uint64_t captured_at_ns,
                               char *handle,
                               size_t handle_size);

// Drops the frame without committing it; its slot goes back to the writer. Aborting
// NULL or an ended frame does nothing.
void shmring_write_frame_abort(shmring_write_frame *f);

// Tells every reader that the stream ended: once they have read every frame, reads
// return `-ENODATA`.
int shmring_writer_eos(shmring_writer *w);

// Closes the ring: its file is removed, readers wait for a next writer (or end, after
// `shmring_writer_eos`). Frames begun and not committed can no longer be. Closing
// NULL or a closed writer does nothing.
void shmring_writer_close(shmring_writer *w);

#ifdef __cplusplus
} // extern "C"
#endif // __cplusplus

#endif /* SHMRING_H */
