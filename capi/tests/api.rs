//! libshmring's functions called as a C program calls them: frames written and read
//! back byte for byte, handles and capture times, and every argument a careless or
//! hostile caller can pass (NULL, closed, released, made-up or mixed-up objects, bad
//! strings and numbers) answered with an error code, never a crash.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr::{null, null_mut};

use shmring::*;
use shmring_common::testing::{check, fill, TestDir};

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn last_error() -> String {
    // SAFETY: shmring_last_error always returns a NUL-terminated string of this thread.
    unsafe { CStr::from_ptr(shmring_last_error()) }
        .to_string_lossy()
        .into_owned()
}

struct Ring {
    dir: TestDir,
    dir_c: CString,
}

impl Ring {
    fn new(tag: &str) -> Self {
        let dir = TestDir::new(tag);
        let dir_c = c(dir.path.to_str().unwrap());
        Ring { dir, dir_c }
    }

    fn writer(&self, name: &str, format: &str, w: i64, h: i64) -> *mut shmring_writer {
        // SAFETY: NUL-terminated strings that outlive the call.
        let wr = unsafe {
            shmring_writer_open(
                c(name).as_ptr(),
                self.dir_c.as_ptr(),
                c(format).as_ptr(),
                w,
                h,
                30.0,
                8,
            )
        };
        assert!(!wr.is_null(), "{}", last_error());
        wr
    }

    fn reader(&self, name: &str, flags: u32) -> *mut shmring_reader {
        // SAFETY: as above.
        let r = unsafe { shmring_reader_open_with(c(name).as_ptr(), self.dir_c.as_ptr(), flags) };
        assert!(!r.is_null(), "{}", last_error());
        r
    }
}

fn write(w: *mut shmring_writer, bytes: &[u8], captured_at: u64) -> String {
    let mut handle = [0 as c_char; SHMRING_HANDLE_SIZE];
    // SAFETY: `bytes` and `handle` are valid for their lengths.
    let rc = unsafe {
        shmring_writer_write(
            w,
            bytes.as_ptr(),
            bytes.len(),
            SHMRING_NO_TIME,
            captured_at,
            handle.as_mut_ptr(),
            handle.len(),
        )
    };
    assert_eq!(rc, 0, "{}", last_error());
    // SAFETY: copy_out NUL-terminates.
    unsafe { CStr::from_ptr(handle.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

// Safe wrappers of the reads for these tests: `out` is always a frame pointer to set
// (or NULL, which is the error they check).
fn latest(r: *mut shmring_reader, t: i64, out: *mut *mut shmring_frame) -> c_int {
    // SAFETY: `out` is NULL or a `shmring_frame *` of the caller.
    unsafe { shmring_reader_latest(r, t, out) }
}

fn next(r: *mut shmring_reader, t: i64, out: *mut *mut shmring_frame) -> c_int {
    // SAFETY: as `latest`.
    unsafe { shmring_reader_next(r, t, out) }
}

fn at(r: *mut shmring_reader, t: u64, rule: c_int, out: *mut *mut shmring_frame) -> c_int {
    // SAFETY: as `latest`.
    unsafe { shmring_reader_at(r, t, rule, out) }
}

fn bytes_of(f: *const shmring_frame) -> Vec<u8> {
    let (p, n) = (shmring_frame_data(f), shmring_frame_size(f));
    assert!(!p.is_null(), "{}", last_error());
    // SAFETY: the frame is not released, and its data is valid for its size.
    unsafe { std::slice::from_raw_parts(p, n) }.to_vec()
}

#[test]
fn frames_written_in_c_are_read_back_byte_for_byte_in_place_and_copied() {
    let ring = Ring::new("capi-roundtrip");
    let w = ring.writer("cam", "I420", 64, 48);
    let size = shmring_writer_frame_size(w);
    assert_eq!(size, 64 * 48 * 3 / 2);
    let leasing = ring.reader("cam", 0);
    let copying = ring.reader("cam", SHMRING_READ_COPY);
    let mut handles = vec![];
    for seq in 1..=5u64 {
        let mut frame = vec![0; size];
        fill(&mut frame, seq);
        handles.push(write(w, &frame, 1_000_000_000 * seq));
        for (r, in_place) in [(leasing, 1), (copying, 0)] {
            let mut f = null_mut();
            assert_eq!(next(r, 1000, &mut f), SHMRING_OK, "{}", last_error());
            assert_eq!(shmring_frame_seq(f), seq);
            assert_eq!(check(&bytes_of(f), seq), Ok(()));
            assert_eq!(shmring_frame_is_in_place(f), in_place);
            assert_eq!(shmring_frame_captured_at(f), 1_000_000_000 * seq);
            assert_eq!(shmring_frame_pts(f), SHMRING_NO_TIME);
            assert_eq!((shmring_frame_width(f), shmring_frame_height(f)), (64, 48));
            // SAFETY: a static NUL-terminated string.
            assert_eq!(unsafe { CStr::from_ptr(shmring_frame_format(f)) }, c"I420");
            assert_eq!(shmring_frame_n_planes(f), 3);
            assert_eq!(shmring_frame_plane_offset(f, 1), 64 * 48);
            assert_eq!(shmring_frame_plane_stride(f, 2), 32);
            let mut h = [0 as c_char; SHMRING_HANDLE_SIZE];
            // SAFETY: `h` is valid for its length.
            let n = unsafe { shmring_frame_handle(f, h.as_mut_ptr(), h.len()) };
            // SAFETY: NUL-terminated by shmring_frame_handle.
            let text = unsafe { CStr::from_ptr(h.as_ptr()) }.to_str().unwrap();
            assert_eq!(
                (n as usize, text),
                (
                    handles.last().unwrap().len(),
                    handles.last().unwrap().as_str()
                )
            );
            shmring_frame_release(f);
        }
    }
    // Nothing newer: a timeout, and no frame.
    let mut f = null_mut();
    assert_eq!(latest(leasing, 50, &mut f), SHMRING_TIMEOUT);
    assert!(f.is_null());
    // By handle and by capture time, from any reader.
    let mut f = null_mut();
    // SAFETY: a NUL-terminated handle.
    let rc = unsafe { shmring_reader_get(copying, c(&handles[2]).as_ptr(), &mut f) };
    assert_eq!(rc, SHMRING_OK, "{}", last_error());
    assert_eq!(check(&bytes_of(f), 3), Ok(()));
    shmring_frame_release(f);
    assert_eq!(
        at(leasing, 4_400_000_000, SHMRING_AT_NEAREST, &mut f),
        SHMRING_OK
    );
    assert_eq!(shmring_frame_seq(f), 4);
    shmring_frame_release(f);
    assert_eq!(
        at(leasing, 4_400_000_000, SHMRING_AT_OR_AFTER, &mut f),
        SHMRING_OK
    );
    assert_eq!(shmring_frame_seq(f), 5);
    shmring_frame_release(f);
    assert_eq!(
        at(leasing, 9_000_000_000, SHMRING_AT_OR_AFTER, &mut f),
        SHMRING_NOT_YET
    );
    // The same ring and epoch, a frame not written yet (only the seq is replaced: the
    // epoch's hex digits may hold ":5" too).
    let future = format!("{}:99", handles[4].rsplit_once(':').unwrap().0);
    // SAFETY: a NUL-terminated handle.
    assert_eq!(
        unsafe { shmring_reader_get(leasing, c(&future).as_ptr(), &mut f) },
        SHMRING_NOT_YET
    );
    // What the ring says of itself.
    let mut info = std::mem::MaybeUninit::<shmring_ring_info>::uninit();
    // SAFETY: `info` is a shmring_ring_info to fill.
    assert_eq!(
        unsafe { shmring_reader_info(leasing, info.as_mut_ptr()) },
        0
    );
    // SAFETY: filled whole by shmring_reader_info.
    let info = unsafe { info.assume_init() };
    assert_eq!(
        (info.width, info.height, info.fps, info.slots),
        (64, 48, 30.0, 8)
    );
    assert_eq!(info.writer_status, SHMRING_WRITER_LIVE);
    assert_eq!(info.writer_pid, std::process::id());
    // SAFETY: NUL-terminated within its 32 bytes.
    assert_eq!(unsafe { CStr::from_ptr(info.format.as_ptr()) }, c"I420");
    let mut caps = [0 as c_char; 8];
    // SAFETY: `caps` is valid for its length.
    let n = unsafe { shmring_reader_caps(leasing, caps.as_mut_ptr(), caps.len()) };
    assert!(n > 8, "the caps are cut to fit, their length told: {n}");
    // SAFETY: NUL-terminated.
    assert_eq!(unsafe { CStr::from_ptr(caps.as_ptr()) }, c"video/x");
    // EOS: once every frame is read, reads say so.
    assert_eq!(shmring_writer_eos(w), 0);
    assert_eq!(next(leasing, 1000, &mut f), -libc::ENODATA);
    assert!(last_error().contains("ended"), "{}", last_error());
    shmring_reader_close(leasing);
    shmring_reader_close(copying);
    shmring_writer_close(w);
    assert!(
        !ring.dir.path.join("cam.ring").exists(),
        "close removes the ring"
    );
}

#[test]
fn frames_filled_in_place_are_committed_without_a_copy() {
    let ring = Ring::new("capi-in-place");
    let w = ring.writer("cam", "BGRx", 32, 16);
    let r = ring.reader("cam", 0);
    for seq in 1..=4u64 {
        let wf = shmring_writer_begin(w);
        assert!(!wf.is_null(), "{}", last_error());
        assert_eq!(shmring_write_frame_is_in_place(wf), 1);
        let n = shmring_write_frame_size(wf);
        // SAFETY: the frame's data is valid for writing its size until the commit.
        let data = unsafe { std::slice::from_raw_parts_mut(shmring_write_frame_data(wf), n) };
        fill(data, seq);
        let mut handle = [0 as c_char; SHMRING_HANDLE_SIZE];
        // SAFETY: `handle` is valid for its length.
        let rc = unsafe {
            shmring_write_frame_commit(
                wf,
                seq * 1000,
                SHMRING_NO_TIME,
                handle.as_mut_ptr(),
                handle.len(),
            )
        };
        assert_eq!(rc, 0, "{}", last_error());
        // Committed: the frame is gone.
        assert!(shmring_write_frame_data(wf).is_null());
        let mut f = null_mut();
        assert_eq!(next(r, 1000, &mut f), SHMRING_OK);
        assert_eq!(
            (shmring_frame_seq(f), shmring_frame_pts(f)),
            (seq, seq * 1000)
        );
        assert_eq!(check(&bytes_of(f), seq), Ok(()));
        shmring_frame_release(f);
    }
    // A commit refused for its arguments writes nothing and keeps the frame, filled.
    let wf = shmring_writer_begin(w);
    // SAFETY: valid for its size until the commit.
    fill(
        unsafe {
            std::slice::from_raw_parts_mut(
                shmring_write_frame_data(wf),
                shmring_write_frame_size(wf),
            )
        },
        5,
    );
    let mut small = [0 as c_char; 8];
    // SAFETY: `small` is valid for its length.
    let rc = unsafe {
        shmring_write_frame_commit(wf, 0, SHMRING_NO_TIME, small.as_mut_ptr(), small.len())
    };
    assert_eq!(rc, -libc::ERANGE);
    assert!(
        last_error().contains("nothing was written"),
        "{}",
        last_error()
    );
    // SAFETY: NULL handle buffer.
    let rc = unsafe { shmring_write_frame_commit(wf, 1 << 63, SHMRING_NO_TIME, null_mut(), 0) };
    assert_eq!(rc, -libc::EINVAL, "{}", last_error());
    let mut f = null_mut();
    assert_eq!(next(r, 50, &mut f), SHMRING_TIMEOUT);
    // SAFETY: NULL handle buffer.
    let rc = unsafe { shmring_write_frame_commit(wf, 5000, SHMRING_NO_TIME, null_mut(), 0) };
    assert_eq!(rc, 0, "{}", last_error());
    assert_eq!(next(r, 1000, &mut f), SHMRING_OK);
    assert_eq!((shmring_frame_seq(f), shmring_frame_pts(f)), (5, 5000));
    assert_eq!(check(&bytes_of(f), 5), Ok(()));
    shmring_frame_release(f);
    // An aborted frame is never read.
    let wf = shmring_writer_begin(w);
    shmring_write_frame_abort(wf);
    let mut f = null_mut();
    assert_eq!(next(r, 50, &mut f), SHMRING_TIMEOUT);
    // A frame begun, its writer closed: the commit says so, and the memory stays
    // writable until then.
    let wf = shmring_writer_begin(w);
    shmring_writer_close(w);
    // SAFETY: valid for its size until the commit, whatever became of the writer.
    unsafe {
        std::ptr::write_bytes(
            shmring_write_frame_data(wf),
            7,
            shmring_write_frame_size(wf),
        )
    };
    // SAFETY: NULL handle buffer.
    let rc = unsafe { shmring_write_frame_commit(wf, 0, SHMRING_NO_TIME, null_mut(), 0) };
    assert_eq!(rc, -libc::EBADF);
    assert!(last_error().contains("closed"), "{}", last_error());
    shmring_reader_close(r);
}

#[test]
fn a_frame_outlives_its_reader_and_a_lease_ends_at_release() {
    let ring = Ring::new("capi-lease");
    let w = ring.writer("cam", "GRAY8", 16, 16);
    let r = ring.reader("cam", 0);
    let mut frame = vec![0; 256];
    fill(&mut frame, 1);
    write(w, &frame, SHMRING_NO_TIME);
    let mut f = null_mut();
    assert_eq!(latest(r, 1000, &mut f), SHMRING_OK);
    assert_eq!(shmring_frame_is_in_place(f), 1);
    shmring_reader_close(r);
    // The lease holds the slot: the writer writes around it, and the frame still reads
    // what was written.
    for seq in 2..=40 {
        fill(&mut frame, seq);
        write(w, &frame, SHMRING_NO_TIME);
    }
    assert_eq!(check(&bytes_of(f), 1), Ok(()));
    shmring_frame_release(f);
    shmring_writer_close(w);
}

#[test]
fn a_reader_closed_by_another_thread_returns_from_its_wait() {
    let ring = Ring::new("capi-close-wait");
    let w = ring.writer("cam", "GRAY8", 16, 16);
    let r = ring.reader("cam", 0);
    let token = r as usize;
    let waiting = std::thread::spawn(move || {
        let mut f = null_mut();
        let start = std::time::Instant::now();
        let rc = next(token as *mut shmring_reader, -1, &mut f);
        (rc, start.elapsed(), f.is_null())
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    shmring_reader_close(r);
    let (rc, took, none) = waiting.join().unwrap();
    assert_eq!(rc, -libc::EBADF);
    assert!(none);
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    shmring_writer_close(w);
}

#[test]
fn every_null_closed_released_or_made_up_object_is_an_error_code() {
    let ring = Ring::new("capi-hostile");
    let w = ring.writer("cam", "GRAY8", 16, 16);
    write(w, &[5; 256], SHMRING_NO_TIME);
    let r = ring.reader("cam", 0);
    let mut f = null_mut();
    assert_eq!(latest(r, 1000, &mut f), SHMRING_OK);
    let closed_r = ring.reader("cam", 0);
    shmring_reader_close(closed_r);
    let released_f = {
        let mut handle = [0 as c_char; SHMRING_HANDLE_SIZE];
        // SAFETY: `handle` is valid for its length.
        unsafe { shmring_frame_handle(f, handle.as_mut_ptr(), handle.len()) };
        let mut g = null_mut();
        // SAFETY: NUL-terminated by shmring_frame_handle.
        assert_eq!(
            unsafe { shmring_reader_get(r, handle.as_ptr(), &mut g) },
            SHMRING_OK
        );
        shmring_frame_release(g);
        g
    };
    let made_up = [
        1usize,
        8,
        0x1000,
        usize::MAX,
        usize::MAX - 7,
        r as usize ^ 8,
    ];
    let bad_readers = [null_mut(), closed_r]
        .into_iter()
        .chain(made_up.iter().map(|&p| p as *mut shmring_reader))
        .chain([
            f as usize as *mut shmring_reader,
            w as usize as *mut shmring_reader,
        ]);
    for bad in bad_readers {
        let mut out = std::ptr::dangling_mut::<shmring_frame>();
        assert_eq!(latest(bad, 0, &mut out), -libc::EBADF, "{bad:?}");
        assert!(out.is_null(), "*out is cleared on every failure");
        assert_eq!(next(bad, 10, &mut out), -libc::EBADF);
        assert_eq!(at(bad, 0, SHMRING_AT_NEAREST, &mut out), -libc::EBADF);
        // SAFETY: NUL-terminated; NULL buffers.
        unsafe {
            assert_eq!(
                shmring_reader_get(bad, c("cam:0000000000000001:1").as_ptr(), &mut out),
                -libc::EBADF
            );
            assert_eq!(
                shmring_reader_info(bad, &mut std::mem::zeroed()),
                -libc::EBADF
            );
            assert_eq!(shmring_reader_caps(bad, null_mut(), 0), -libc::EBADF);
        }
        assert!(
            last_error().contains("not an open reader"),
            "{}",
            last_error()
        );
        shmring_reader_close(bad); // nothing, and never the object of another kind
    }
    let bad_frames = [null_mut(), released_f]
        .into_iter()
        .chain(made_up.iter().map(|&p| p as *mut shmring_frame))
        .chain([
            r as usize as *mut shmring_frame,
            w as usize as *mut shmring_frame,
        ]);
    for bad in bad_frames {
        assert!(shmring_frame_data(bad).is_null());
        assert!(shmring_frame_format(bad).is_null());
        assert_eq!(shmring_frame_size(bad), 0);
        assert_eq!(shmring_frame_seq(bad), 0);
        assert_eq!(shmring_frame_captured_at(bad), 0);
        assert_eq!(shmring_frame_plane_stride(bad, 0), 0);
        assert_eq!(shmring_frame_is_in_place(bad), 0);
        // SAFETY: NULL buffer.
        assert_eq!(
            unsafe { shmring_frame_handle(bad, null_mut(), 0) },
            -libc::EBADF
        );
        shmring_frame_release(bad);
        shmring_frame_release(bad); // twice: still nothing
    }
    // The real objects survived all of that, mixed-up kinds included.
    assert_eq!(shmring_frame_size(f), 256);
    assert_eq!(bytes_of(f), vec![5; 256]);
    assert_eq!(shmring_writer_frame_size(w), 256);
    let mut g = null_mut();
    write(w, &[6; 256], SHMRING_NO_TIME);
    assert_eq!(latest(r, 1000, &mut g), SHMRING_OK);
    shmring_frame_release(g);
    for bad in [
        null_mut(),
        8 as *mut shmring_writer,
        r as usize as *mut shmring_writer,
    ] {
        assert_eq!(shmring_writer_frame_size(bad), 0);
        assert!(shmring_writer_begin(bad).is_null());
        assert_eq!(shmring_writer_eos(bad), -libc::EBADF);
        // SAFETY: a valid buffer.
        let rc =
            unsafe { shmring_writer_write(bad, [0u8; 256].as_ptr(), 256, 0, 0, null_mut(), 0) };
        assert_eq!(rc, -libc::EBADF);
        shmring_writer_close(bad);
    }
    for bad in [
        null_mut(),
        8 as *mut shmring_write_frame,
        f as usize as *mut shmring_write_frame,
    ] {
        assert!(shmring_write_frame_data(bad).is_null());
        // SAFETY: NULL handle buffer.
        assert_eq!(
            unsafe { shmring_write_frame_commit(bad, 0, 0, null_mut(), 0) },
            -libc::EBADF
        );
        shmring_write_frame_abort(bad);
    }
    assert_eq!(
        shmring_frame_size(f),
        256,
        "a frame is not ended as a frame being written"
    );
    shmring_frame_release(f);
    shmring_reader_close(r);
    shmring_writer_close(w);
}

#[test]
fn bad_arguments_are_named_in_the_error() {
    let ring = Ring::new("capi-args");
    let dir = ring.dir_c.as_ptr();
    let open = |name: &CStr, format: &CStr, w: i64, h: i64, fps: f64, slots: i64| {
        // SAFETY: NUL-terminated strings.
        let p =
            unsafe { shmring_writer_open(name.as_ptr(), dir, format.as_ptr(), w, h, fps, slots) };
        assert!(p.is_null());
        last_error()
    };
    assert!(open(c"../x", c"I420", 8, 8, 30.0, 0).contains("invalid ring name"));
    assert!(open(c"cam", c"I421", 8, 8, 30.0, 0).contains("format"));
    assert!(open(c"cam", c"I420", 0, 8, 30.0, 0).contains("width"));
    assert!(open(c"cam", c"I420", 8, 1 << 40, 30.0, 0).contains("height"));
    assert!(open(c"cam", c"I420", 8, 8, f64::NAN, 0).contains("fps"));
    assert!(open(c"cam", c"I420", 8, 8, 30.0, 1).contains("slots"));
    assert!(open(c"cam", c"I420", 8, 8, 30.0, -5).contains("slots"));
    // SAFETY: NULL and NUL-terminated strings.
    unsafe {
        assert!(shmring_writer_open(null(), dir, c"I420".as_ptr(), 8, 8, 30.0, 0).is_null());
        assert!(last_error().contains("ring: NULL"));
        assert!(shmring_writer_open(c"cam".as_ptr(), dir, null(), 8, 8, 30.0, 0).is_null());
        assert!(last_error().contains("format: NULL"));
        assert!(shmring_reader_open(c"nothere".as_ptr(), dir).is_null());
        assert!(last_error().contains("no ring"), "{}", last_error());
        assert!(shmring_reader_open(c"\xff".as_ptr(), dir).is_null());
        assert!(last_error().contains("UTF-8"));
        assert!(shmring_reader_open(c"cam".as_ptr(), c"".as_ptr()).is_null());
        assert!(shmring_reader_open_with(c"cam".as_ptr(), dir, 0x80).is_null());
        assert!(last_error().contains("flags"));
    }
    let w = ring.writer("cam", "GRAY8", 16, 16);
    // SAFETY: NUL-terminated; a second writer of a live ring is refused.
    let second =
        unsafe { shmring_writer_open(c"cam".as_ptr(), dir, c"GRAY8".as_ptr(), 16, 16, 30.0, 0) };
    assert!(second.is_null());
    assert!(
        last_error().contains(&std::process::id().to_string()),
        "{}",
        last_error()
    );
    let r = ring.reader("cam", 0);
    // SAFETY: buffers valid for what is said of them, or NULL.
    unsafe {
        let short = [0u8; 255];
        assert_eq!(
            shmring_writer_write(w, short.as_ptr(), 255, 0, 0, null_mut(), 0),
            -libc::EINVAL
        );
        assert!(last_error().contains("size 255"), "{}", last_error());
        assert_eq!(
            shmring_writer_write(w, null(), 256, 0, 0, null_mut(), 0),
            -libc::EINVAL
        );
        let frame = [0u8; 256];
        assert_eq!(
            shmring_writer_write(w, frame.as_ptr(), 256, 1 << 63, 0, null_mut(), 0),
            -libc::EINVAL
        );
        assert!(last_error().contains("pts"), "{}", last_error());
        assert_eq!(
            shmring_writer_write(w, frame.as_ptr(), 256, 0, u64::MAX - 1, null_mut(), 0),
            -libc::EINVAL
        );
        assert!(last_error().contains("captured_at"), "{}", last_error());
        // A handle buffer too short for the ring's handles: refused before anything is
        // written (a cut handle would be refused by every reader), the buffer untouched.
        let mut tiny = [0x55 as c_char; 4];
        assert_eq!(
            shmring_writer_write(w, frame.as_ptr(), 256, 0, 0, tiny.as_mut_ptr(), 4),
            -libc::ERANGE
        );
        assert!(last_error().contains("handle_size 4"), "{}", last_error());
        assert_eq!(tiny, [0x55 as c_char; 4]);
        let mut nothing = null_mut();
        assert_eq!(latest(r, 0, &mut nothing), SHMRING_TIMEOUT);
        assert_eq!(
            shmring_writer_write(w, frame.as_ptr(), 256, 0, 0, null_mut(), 0),
            0
        );
        let mut out = null_mut();
        assert_eq!(latest(r, 1000, null_mut()), -libc::EINVAL);
        assert_eq!(at(r, 0, 7, &mut out), -libc::EINVAL);
        assert!(last_error().contains("rule 7"));
        for h in [
            c"",
            c"cam",
            c"cam:zz:1",
            c"other:0000000000000001:1",
            c"cam:1:1:1",
        ] {
            assert_eq!(
                shmring_reader_get(r, h.as_ptr(), &mut out),
                -libc::EINVAL,
                "{h:?}"
            );
        }
        assert_eq!(shmring_reader_get(r, null(), &mut out), -libc::EINVAL);
        assert_eq!(shmring_reader_info(r, null_mut()), -libc::EINVAL);
        assert_eq!(latest(r, 1000, &mut out), 0);
        assert_eq!(shmring_frame_plane_offset(out, 1), 0);
        assert!(last_error().contains("plane 1"));
        shmring_frame_release(out);
    }
    shmring_reader_close(r);
    shmring_writer_close(w);
}

/// Thousands of calls with arguments drawn at random from good and bad ones: each
/// returns, and the objects that are open stay usable.
#[test]
fn random_calls_with_random_arguments_never_crash() {
    let ring = Ring::new("capi-random");
    let w = ring.writer("cam", "NV12", 32, 16);
    let r = ring.reader("cam", 0);
    let size = shmring_writer_frame_size(w);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut frames: Vec<*mut shmring_frame> = vec![];
    let mut handles: Vec<CString> = vec![c("cam:0000000000000000:0"), c("junk")];
    for _ in 0..5000 {
        let pick = rand();
        let frame = match rand() % 4 {
            0 => null_mut(),
            1 => (rand() as usize) as *mut shmring_frame,
            _ => frames
                .get(pick as usize % frames.len().max(1))
                .copied()
                .unwrap_or(null_mut()),
        };
        let reader = if rand() % 8 == 0 {
            (rand() as usize) as *mut shmring_reader
        } else {
            r
        };
        let mut out = null_mut();
        let rc: c_int = match pick % 10 {
            0 => {
                let bytes = vec![(pick >> 8) as u8; size];
                // SAFETY: `bytes` is valid for `size`.
                unsafe {
                    shmring_writer_write(
                        w,
                        bytes.as_ptr(),
                        size,
                        rand() >> 2,
                        rand() >> 2,
                        null_mut(),
                        0,
                    )
                }
            }
            1 => latest(reader, 0, &mut out),
            2 => next(reader, 0, &mut out),
            3 => at(reader, rand() >> 1, (rand() % 4) as c_int, &mut out),
            4 => {
                let h = &handles[rand() as usize % handles.len()];
                // SAFETY: NUL-terminated.
                unsafe { shmring_reader_get(reader, h.as_ptr(), &mut out) }
            }
            5 => {
                let mut b = [0 as c_char; SHMRING_HANDLE_SIZE];
                // SAFETY: `b` is valid for its length.
                let n =
                    unsafe { shmring_frame_handle(frame, b.as_mut_ptr(), (rand() % 130) as usize) };
                if n > 0 {
                    // SAFETY: NUL-terminated.
                    handles.push(unsafe { CStr::from_ptr(b.as_ptr()) }.to_owned());
                }
                n
            }
            6 => {
                shmring_frame_release(frame);
                frames.retain(|&f| f != frame);
                0
            }
            7 => {
                let p = shmring_frame_plane_offset(frame, (rand() % 5) as u32);
                let d = shmring_frame_data(frame);
                assert!(d.is_null() || p < shmring_frame_size(frame));
                0
            }
            8 => {
                let wf = shmring_writer_begin(w);
                if rand() % 2 == 0 {
                    // SAFETY: NULL handle buffer.
                    unsafe { shmring_write_frame_commit(wf, 0, SHMRING_NO_TIME, null_mut(), 0) }
                } else {
                    shmring_write_frame_abort(wf);
                    0
                }
            }
            _ => {
                let mut b = [0 as c_char; 16];
                // SAFETY: `b` is valid for its length.
                unsafe { shmring_reader_caps(reader, b.as_mut_ptr(), (rand() % 17) as usize) }
            }
        };
        // A status or a negative errno; lengths (handles, caps) are at most a few hundred.
        let length = matches!(pick % 10, 5 | 9);
        assert!(
            rc >= -4096 && (rc <= SHMRING_GONE || length && rc < 1024),
            "{rc}"
        );
        if !out.is_null() {
            frames.push(out);
        }
        // Leases are few: let go of the oldest frames as a reader would.
        while frames.len() > 4 {
            shmring_frame_release(frames.remove(0));
        }
    }
    for f in frames {
        shmring_frame_release(f);
    }
    let bytes = vec![9; size];
    write(w, &bytes, SHMRING_NO_TIME);
    let mut f = null_mut();
    assert_eq!(latest(r, 1000, &mut f), SHMRING_OK, "{}", last_error());
    assert_eq!(bytes_of(f), bytes);
    shmring_frame_release(f);
    shmring_reader_close(r);
    shmring_writer_close(w);
}

#[test]
fn a_plane_layout_that_leaves_the_frame_is_refused_not_handed_to_c() {
    use shmring_common::layout::{Descriptor, DESCRIPTOR_OFFSET, DESCRIPTOR_SIZE};
    use std::os::unix::fs::FileExt;
    let ring = Ring::new("capi-planes");
    let w = ring.writer("cam", "I420", 32, 16);
    let r = ring.reader("cam", 0);
    write(w, &vec![0u8; shmring_writer_frame_size(w)], SHMRING_NO_TIME);
    let mut f = null_mut();
    assert_eq!(next(r, 1000, &mut f), SHMRING_OK);
    assert_eq!(shmring_frame_plane_stride(f, 0), 32);
    assert_eq!(shmring_frame_plane_offset(f, 1), 512);
    shmring_frame_release(f);
    // A hostile writer of the same user rewrites frame 1's descriptor (slot 1 of 8):
    // a negative stride for plane 0, an offset beyond the frame for plane 1.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(ring.dir.path.join("cam.ring"))
        .unwrap();
    let slot1 = DESCRIPTOR_OFFSET + DESCRIPTOR_SIZE;
    let stride0 = slot1 + std::mem::offset_of!(Descriptor, plane_stride) as u64;
    let offset1 = slot1 + std::mem::offset_of!(Descriptor, plane_offset) as u64 + 8;
    file.write_all_at(&(-32i32).to_le_bytes(), stride0).unwrap();
    file.write_all_at(&(1u64 << 40).to_le_bytes(), offset1)
        .unwrap();
    let mut f = null_mut();
    assert_eq!(
        at(r, 0, SHMRING_AT_OR_AFTER, &mut f),
        SHMRING_OK,
        "{}",
        last_error()
    );
    assert_eq!(shmring_frame_seq(f), 1);
    assert_eq!(shmring_frame_plane_stride(f, 0), 0);
    assert!(
        last_error().contains("does not lie within"),
        "{}",
        last_error()
    );
    assert_eq!(shmring_frame_plane_offset(f, 1), 0);
    assert!(last_error().contains("plane 1"), "{}", last_error());
    // The untouched plane is still given.
    assert_eq!(shmring_frame_plane_stride(f, 2), 16);
    shmring_frame_release(f);
    shmring_reader_close(r);
    shmring_writer_close(w);
}

#[test]
fn a_commit_while_another_thread_writes_is_busy_and_keeps_the_frame() {
    let ring = Ring::new("capi-busy");
    let w = ring.writer("cam", "BGRx", 1920, 1080);
    let r = ring.reader("cam", 0);
    let size = shmring_writer_frame_size(w);
    let token = w as usize;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    // Another thread copies 8 MB frames in, holding the writer for a millisecond or so
    // each time.
    let other = std::thread::spawn(move || {
        let frame = vec![1u8; size];
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: `frame` is valid for `size` bytes; NULL handle buffer.
            let rc = unsafe {
                shmring_writer_write(token as *mut _, frame.as_ptr(), size, 0, 0, null_mut(), 0)
            };
            assert!(rc == 0 || rc == -libc::EBUSY, "{rc}");
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen_busy = false;
    while !seen_busy && std::time::Instant::now() < deadline {
        let wf = shmring_writer_begin(w);
        if wf.is_null() {
            continue; // begun while the other thread held the writer
        }
        // SAFETY: valid for its size until the frame ends.
        unsafe { std::ptr::write_bytes(shmring_write_frame_data(wf), 9, size) };
        loop {
            // SAFETY: NULL handle buffer.
            let rc = unsafe { shmring_write_frame_commit(wf, 0, SHMRING_NO_TIME, null_mut(), 0) };
            if rc == 0 {
                break;
            }
            assert_eq!(rc, -libc::EBUSY, "{}", last_error());
            // Nothing written, and the frame is still there, filled, to commit again.
            seen_busy = true;
            assert_eq!(shmring_write_frame_size(wf), size);
            // SAFETY: the frame is still open, valid for its size.
            let data = unsafe { std::slice::from_raw_parts(shmring_write_frame_data(wf), size) };
            assert!(data.iter().all(|&b| b == 9));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    other.join().unwrap();
    assert!(seen_busy, "no commit met the other thread's write in 20 s");
    shmring_reader_close(r);
    shmring_writer_close(w);
}
