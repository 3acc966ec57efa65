//! `Reader`: one ring's frames for Node, sync (polling or waiting) or async (waiting on
//! a thread of the reader's own), following its writer when it is replaced.
//!
//! The reading policy is `shmring_common::session`'s. A read takes the session's lock
//! only for a poll, so `get` and `at` beside a pending async read do not wait. One
//! `latest`/`next` at a time per reader: a second while an async one waits is
//! `ERR_SHMRING_BUSY` (two reads in order of one reader have no meaning).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::time::Instant;

use napi::bindgen_prelude::*;
use napi::JsDeferred;
use napi_derive::napi;

use shmring_common::session::{Got, Read, ReadMode, Session};
use shmring_common::{AtRule, Handle, Payload, RingLocation};

use crate::frame::NativeFrame;
use crate::{deadline, error, ring_error};

type Resolve = Box<dyn FnOnce(Env) -> Result<Option<NativeFrame>> + Send>;

/// A read for the reader's thread.
struct Job {
    mode: ReadMode,
    deadline: Option<Instant>,
    deferred: JsDeferred<Option<NativeFrame>, Resolve>,
}

/// What the reader's thread and the reader share.
struct Shared {
    session: Session,
    /// Set by `close`: reads stop at their next look (the interrupter wakes them).
    /// Relaxed is enough: the interrupter's own Release/Acquire orders the wake-up.
    closed: AtomicBool,
    /// An async read is pending. Stored and loaded on the JS thread only (set when it
    /// hands a job over, cleared as the promise settles): Relaxed.
    busy: AtomicBool,
}

impl Shared {
    fn read(&self, mode: ReadMode, deadline: Option<Instant>) -> Result<Option<NativeFrame>> {
        let read = self
            .session
            .read(mode, deadline, || self.closed.load(Ordering::Relaxed))
            .map_err(ring_error)?;
        let loc = self.session.location();
        match read {
            Read::Frame(f) => Ok(Some(NativeFrame::new(f.info, f.data, f.missed))),
            Read::TimedOut => Ok(None),
            Read::Stopped => Err(error(
                "ERR_SHMRING_CLOSED",
                format!("the reader of ring {loc} was closed"),
            )),
            Read::Eos => Err(error(
                "ERR_SHMRING_EOS",
                format!("the writer of ring {loc} ended its stream"),
            )),
            Read::WriterGone(why) => Err(error(
                "ERR_SHMRING_WRITER_GONE",
                format!(
                    "the writer of ring {loc} is gone ({why:?}) and no new writer came within the timeout"
                ),
            )),
        }
    }
}

/// The reader's thread: waits for frames so that the event loop never does.
fn serve(shared: Arc<Shared>, jobs: mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        // A panic must still settle the promise: else it never settles, and the
        // threadsafe function behind it keeps the event loop alive for ever.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shared.read(job.mode, job.deadline)
        }))
        .unwrap_or_else(|_| Err(error("ERR_SHMRING_NODE", "the read panicked")));
        let shared = Arc::clone(&shared);
        // On the JS thread, as the promise settles: a read asked for before this runs
        // is still refused as busy, so reads of one reader never overlap.
        job.deferred.resolve(Box::new(move |_env| {
            shared.busy.store(false, Ordering::Relaxed);
            result
        }));
    }
}

/// Reads one ring (`index.js` wraps it as `Reader`).
#[napi]
pub struct NativeReader {
    shared: Arc<Shared>,
    /// The reader's thread, started by the first async read; None once closed.
    jobs: Option<Sender<Job>>,
}

impl NativeReader {
    fn loc(&self) -> &RingLocation {
        self.shared.session.location()
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(error(
                "ERR_SHMRING_CLOSED",
                format!("the reader of ring {} is closed", self.loc()),
            ));
        }
        Ok(())
    }

    /// Open, and no async read pending.
    fn check_idle(&self) -> Result<()> {
        self.check_open()?;
        if self.shared.busy.load(Ordering::Relaxed) {
            return Err(error(
                "ERR_SHMRING_BUSY",
                format!(
                    "an async read of ring {} is pending: await it before the next read",
                    self.loc()
                ),
            ));
        }
        Ok(())
    }

    fn read_sync(&self, mode: ReadMode, timeout_ms: Option<f64>) -> Result<Option<NativeFrame>> {
        // Sync reads poll unless told to wait: the event loop is the caller's.
        let deadline = deadline(Some(timeout_ms.unwrap_or(0.0)))?;
        self.check_idle()?;
        self.shared.read(mode, deadline)
    }

    fn read_async<'env>(
        &mut self,
        env: &'env Env,
        mode: ReadMode,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        let deadline = deadline(timeout_ms)?;
        self.check_idle()?;
        if self.jobs.is_none() {
            let (tx, rx) = mpsc::channel();
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name(format!("shmring {}", self.loc().display_name()))
                .spawn(move || serve(shared, rx))
                .map_err(|e| error("ERR_SHMRING_IO", format!("cannot start a thread: {e}")))?;
            self.jobs = Some(tx);
        }
        let (deferred, promise) = env.create_deferred::<Option<NativeFrame>, Resolve>()?;
        self.shared.busy.store(true, Ordering::Relaxed);
        let job = Job {
            mode,
            deadline,
            deferred,
        };
        if let Err(mpsc::SendError(job)) = self.jobs.as_ref().expect("started").send(job) {
            self.shared.busy.store(false, Ordering::Relaxed);
            job.deferred
                .reject(error("ERR_SHMRING_IO", "the reader's thread is gone"));
        }
        Ok(promise)
    }

    fn got(&self, got: Got, what: impl FnOnce() -> String) -> Result<NativeFrame> {
        match got {
            Got::Frame(f) => Ok(NativeFrame::new(f.info, Payload::Copied(f.data), 0)),
            Got::NotYet => Err(error(
                "ERR_SHMRING_NOT_YET_WRITTEN",
                format!("{} is not written yet", what()),
            )),
            Got::Gone => Err(error(
                "ERR_SHMRING_HANDLE_GONE",
                format!("{} was overwritten, or is of another writer epoch", what()),
            )),
        }
    }
}

/// What the ring says of itself.
#[napi(object)]
pub struct RingInfo {
    pub ring: String,
    pub path: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub format: Option<String>,
    pub fps: Option<f64>,
    pub caps: Option<String>,
    pub slots: u32,
    pub writer_pid: u32,
    pub writer_state: String,
    pub epoch: String,
}

/// Opens ring `ring` (a name in `dir`, default `/dev/shm/shmring-<uid>` or
/// `$SHMRING_DIR`, or an absolute path), from its newest frame.
fn open_session(ring: &str, dir: Option<&str>, zero_copy: Option<bool>) -> Result<Session> {
    let dir = dir.map(PathBuf::from);
    let loc = RingLocation::parse(ring, dir.as_deref()).map_err(ring_error)?;
    Session::open(loc, zero_copy.unwrap_or(true)).map_err(ring_error)
}

impl From<Session> for NativeReader {
    fn from(session: Session) -> Self {
        NativeReader {
            shared: Arc::new(Shared {
                session,
                closed: AtomicBool::new(false),
                busy: AtomicBool::new(false),
            }),
            jobs: None,
        }
    }
}

/// `openReader`: a reader opened on libuv's pool. Opening maps the ring and makes the
/// page tables of all of it (3 ms for a 1080p ring, 70 ms for 1 GiB), which the
/// constructor does on the event loop. Not a wait: a ring that is not there is an
/// error at once, as for the constructor.
pub struct OpenReader {
    ring: String,
    dir: Option<String>,
    zero_copy: Option<bool>,
}

impl Task for OpenReader {
    type Output = Session;
    type JsValue = NativeReader;

    fn compute(&mut self) -> Result<Session> {
        std::panic::catch_unwind(|| open_session(&self.ring, self.dir.as_deref(), self.zero_copy))
            .unwrap_or_else(|_| Err(error("ERR_SHMRING_NODE", "opening the reader panicked")))
    }

    fn resolve(&mut self, _env: Env, session: Session) -> Result<NativeReader> {
        Ok(session.into())
    }
}

/// Opens a reader as `new NativeReader` does, off the event loop.
#[napi(ts_return_type = "Promise<NativeReader>", catch_unwind)]
pub fn open_reader(
    ring: String,
    dir: Option<String>,
    zero_copy: Option<bool>,
) -> AsyncTask<OpenReader> {
    AsyncTask::new(OpenReader {
        ring,
        dir,
        zero_copy,
    })
}

#[napi]
impl NativeReader {
    /// Opens ring `ring` (see `open_session`), on the JavaScript thread.
    #[napi(constructor, catch_unwind)]
    pub fn new(ring: String, dir: Option<String>, zero_copy: Option<bool>) -> Result<Self> {
        Ok(open_session(&ring, dir.as_deref(), zero_copy)?.into())
    }

    /// The newest frame not returned yet, waiting up to `timeoutMs` (default 0: a
    /// poll); null when none came in time.
    #[napi(catch_unwind)]
    pub fn latest(&self, timeout_ms: Option<f64>) -> Result<Option<NativeFrame>> {
        self.read_sync(ReadMode::Latest, timeout_ms)
    }

    /// The next frame in order, as `latest`.
    #[napi(catch_unwind)]
    pub fn next(&self, timeout_ms: Option<f64>) -> Result<Option<NativeFrame>> {
        self.read_sync(ReadMode::Next, timeout_ms)
    }

    /// As `latest`, waiting on the reader's thread (default: for ever).
    #[napi(ts_return_type = "Promise<NativeFrame | null>", catch_unwind)]
    pub fn latest_async<'env>(
        &mut self,
        env: &'env Env,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        self.read_async(env, ReadMode::Latest, timeout_ms)
    }

    /// As `next`, waiting on the reader's thread (default: for ever).
    #[napi(ts_return_type = "Promise<NativeFrame | null>", catch_unwind)]
    pub fn next_async<'env>(
        &mut self,
        env: &'env Env,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        self.read_async(env, ReadMode::Next, timeout_ms)
    }

    /// Exactly the frame `handle` names (a copy), without waiting.
    #[napi(catch_unwind)]
    pub fn get(&self, handle: String) -> Result<NativeFrame> {
        self.check_open()?;
        let h: Handle = handle.parse().map_err(ring_error)?;
        let got = self.shared.session.get(&h).map_err(ring_error)?;
        self.got(got, || format!("frame {handle}"))
    }

    /// The frame captured closest to `capturedAt` (ns since the Unix epoch) by `rule`
    /// ("nearest", "at-or-before", "at-or-after"), a copy.
    #[napi(catch_unwind)]
    pub fn at(&self, captured_at: BigInt, rule: Option<String>) -> Result<NativeFrame> {
        self.check_open()?;
        let (negative, t, lossless) = captured_at.get_u64();
        if negative || !lossless {
            return Err(error(
                "ERR_SHMRING_INVALID_ARG",
                "capturedAt: expected ns since the Unix epoch, 0 to 2n**64n - 1n",
            ));
        }
        let rule: AtRule = rule
            .as_deref()
            .unwrap_or("nearest")
            .parse()
            .map_err(|e| error("ERR_SHMRING_INVALID_ARG", e))?;
        let got = self.shared.session.at(t, rule).map_err(ring_error)?;
        self.got(got, || {
            format!("the frame of {} captured by {t} ({rule:?})", self.loc())
        })
    }

    /// What the ring says of itself.
    #[napi(catch_unwind)]
    pub fn info(&self) -> Result<RingInfo> {
        self.check_open()?;
        let i = self.shared.session.info().map_err(ring_error)?;
        Ok(RingInfo {
            ring: self.loc().display_name().to_owned(),
            path: self.loc().path().display().to_string(),
            width: i.width,
            height: i.height,
            format: i.format,
            fps: i.fps,
            caps: i.caps,
            slots: i.slots,
            writer_pid: i.writer_pid,
            writer_state: format!("{:?}", i.writer_status).to_lowercase(),
            epoch: format!("{:016x}", i.epoch),
        })
    }

    /// Stops reading: a pending async read rejects with ERR_SHMRING_CLOSED, every
    /// later call throws it. Frames already read keep their bytes until released.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.shared.session.interrupt();
        // The thread ends when its pending read has stopped and it sees no sender.
        self.jobs = None;
    }

    #[napi(getter, catch_unwind)]
    pub fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }
}

impl Drop for NativeReader {
    fn drop(&mut self) {
        self.close();
    }
}
