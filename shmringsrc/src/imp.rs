//! The shmringsrc element: properties, BaseSrc/PushSrc, negotiation, allocation, attaching.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, LazyLock, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;

use shmring_common::{Attached, Follow, Follower, Interrupter, RingLocation, StartAt};

use crate::buffers::Allocator;
use crate::handles::Request;
use crate::stats::Stats;
use crate::timestamps::{self, Stamper};
use crate::{Mode, Timestamps};

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "shmringsrc",
        gst::DebugColorFlags::empty(),
        Some("shmring ring reader"),
    )
});

const DEFAULT_MODE: Mode = Mode::Latest;
/// One second, as GStreamer counts: nanoseconds.
const DEFAULT_TIMEOUT: u64 = 1_000_000_000;
const MIN_TIMEOUT: u64 = 1_000_000;
const DEFAULT_ZERO_COPY: bool = true;
/// With `timestamps=capture`, how old a frame may be when it leaves the source.
const DEFAULT_MAX_AGE: u64 = 200_000_000;

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) ring: Option<String>,
    pub(crate) dir: Option<String>,
    pub(crate) mode: Mode,
    pub(crate) timeout: u64,
    pub(crate) zero_copy: bool,
    pub(crate) timestamps: Timestamps,
    pub(crate) max_age: u64,
    pub(crate) start: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ring: None,
            dir: None,
            mode: DEFAULT_MODE,
            timeout: DEFAULT_TIMEOUT,
            zero_copy: DEFAULT_ZERO_COPY,
            timestamps: Timestamps::Arrival,
            max_age: DEFAULT_MAX_AGE,
            start: 0,
        }
    }
}

/// What the streaming thread reads from. Only `create` and `stop` touch it.
pub(crate) struct Stream {
    /// The ring's reader, following the ring's writers from one to the next.
    pub(crate) follower: Follower,
    pub(crate) allocator: Allocator,
    pub(crate) caps_version: u32,
    pub(crate) caps: Option<gst::Caps>,
    pub(crate) info: Option<gst_video::VideoInfo>,
    pub(crate) discont: bool,
    pub(crate) stamper: Stamper,
    /// The stamps of units, when the ring holds encoded video.
    pub(crate) unit_clock: crate::units::UnitClock,
    /// `handle` mode on encoded video: the units from a requested unit's keyframe up
    /// to it, still to output, then the request itself.
    pub(crate) gop: std::collections::VecDeque<u64>,
    /// The last unit output in `handle` mode (epoch, seq): a request further into the
    /// same GOP continues from it instead of sending the GOP again.
    pub(crate) last_unit: Option<(u64, u64)>,
    pub(crate) gop_then: Option<(
        shmring_common::Handle,
        Option<(u64, shmring_common::AtRule)>,
    )>,
}

impl Stream {
    pub(crate) fn loc(&self) -> &RingLocation {
        self.follower.location()
    }
}

/// What queries need while `create` may be blocked holding `stream`: never held across
/// a wait.
#[derive(Default)]
pub(crate) struct Negotiated {
    pub(crate) caps: Option<gst::Caps>,
    pub(crate) frame_duration: Option<gst::ClockTime>,
    pub(crate) slots: u32,
}

pub struct ShmRingSrc {
    pub(crate) settings: Mutex<Settings>,
    pub(crate) negotiated: Mutex<Negotiated>,
    stream: Mutex<Option<Stream>>,
    /// Wakes the streaming thread's waits; kept outside `stream` so that `unlock` never
    /// waits for the lock a blocked `create` holds.
    interrupter: Mutex<Option<Interrupter>>,
    pub(crate) flushing: AtomicBool,
    pub(crate) requests: Mutex<VecDeque<Request>>,
    pub(crate) requests_cond: Condvar,
    pub(crate) stats: Mutex<Stats>,
    /// The pool of a shmringsink downstream, when the allocation query brought one.
    pub(crate) ring_pool: Mutex<Option<gst::BufferPool>>,
}

impl Default for ShmRingSrc {
    fn default() -> Self {
        ShmRingSrc {
            settings: Mutex::default(),
            negotiated: Mutex::default(),
            stream: Mutex::default(),
            interrupter: Mutex::default(),
            flushing: AtomicBool::new(false),
            requests: Mutex::default(),
            requests_cond: Condvar::new(),
            stats: Mutex::default(),
            ring_pool: Mutex::default(),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for ShmRingSrc {
    const NAME: &'static str = "GstShmRingSrc";
    type Type = super::ShmRingSrc;
    type ParentType = gst_base::PushSrc;
}

impl ObjectImpl for ShmRingSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("ring")
                    .nick("Ring")
                    .blurb("Ring name (in the ring directory) or an absolute path")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("dir")
                    .nick("Directory")
                    .blurb("Ring directory for named rings (default /dev/shm/shmring-<uid>, or $SHMRING_DIR)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("mode", DEFAULT_MODE)
                    .nick("Mode")
                    .blurb("Which frames to output")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("zero-copy")
                    .nick("Zero copy")
                    .blurb("Output frames straight from shared memory (read-only, the slot leased until the buffer is freed) when the ring allows; otherwise copy. A shmringsink downstream that proposes its pool gets each frame copied straight into its ring instead")
                    .default_value(DEFAULT_ZERO_COPY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("timeout")
                    .nick("Timeout")
                    .blurb("Nanoseconds without a writer or a frame before a \"shmringsrc-timeout\" element message (waiting goes on)")
                    .minimum(MIN_TIMEOUT)
                    .default_value(DEFAULT_TIMEOUT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("timestamps", Timestamps::Arrival)
                    .nick("Timestamps")
                    .blurb("arrival: each PTS is the running time when the buffer leaves; capture: the frame's capture time (timestamp/x-unix) on the pipeline clock, so that compositor and muxers line rings up by capture (the source then reports max-age as its latency and drops older frames)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("max-age")
                    .nick("Maximum age")
                    .blurb("With timestamps=capture: nanoseconds a frame may have been captured before it leaves; older ones are dropped (too-late in stats). Also the latency the source reports. At most an hour")
                    .maximum(timestamps::MAX_MAX_AGE_NS)
                    .default_value(DEFAULT_MAX_AGE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("start")
                    .nick("Start")
                    .blurb("mode=sequential: begin with the oldest frame still held that was captured at most this many nanoseconds before the source started (look-back); 0 begins with the newest")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("received, skipped, lost, torn-retries, zero-copy, into-ring, reattaches, timeouts, handles-*, too-late, invalid")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                glib::subclass::Signal::builder("request-frame")
                    .param_types([String::static_type()])
                    .return_type::<bool>()
                    .action()
                    .class_handler(|args| {
                        let element = args[0].get::<super::ShmRingSrc>().expect("signal arg");
                        let handle = args[1]
                            .get::<Option<String>>()
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                        Some(element.imp().request_frame(&handle).to_value())
                    })
                    .build(),
                // request-frame-at(capture_time_ns, rule): the frame captured closest
                // to a wall-clock time, by rule "nearest", "at-or-before" or
                // "at-or-after".
                glib::subclass::Signal::builder("request-frame-at")
                    .param_types([u64::static_type(), String::static_type()])
                    .return_type::<bool>()
                    .action()
                    .class_handler(|args| {
                        let element = args[0].get::<super::ShmRingSrc>().expect("signal arg");
                        let at = args[1].get::<u64>().unwrap_or(0);
                        let rule = args[2]
                            .get::<Option<String>>()
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                        Some(element.imp().request_frame_at(at, &rule).to_value())
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
        obj.set_do_timestamp(true);
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "ring" => {
                let ring: Option<String> = value.get().expect("type checked upstream");
                if let Some(r) = &ring {
                    if let Err(e) = RingLocation::parse(r, None) {
                        gst::error!(CAT, imp = self, "{e}");
                    }
                }
                settings.ring = ring;
            }
            "dir" => settings.dir = value.get().expect("type checked upstream"),
            "mode" => settings.mode = value.get().expect("type checked upstream"),
            "timeout" => settings.timeout = value.get().expect("type checked upstream"),
            "timestamps" => settings.timestamps = value.get().expect("type checked upstream"),
            "max-age" => settings.max_age = value.get().expect("type checked upstream"),
            "start" => settings.start = value.get().expect("type checked upstream"),
            "zero-copy" => settings.zero_copy = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            // Not under `settings`: one lock at a time (docs/design.md).
            return self.stats_structure().to_value();
        }
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "ring" => settings.ring.to_value(),
            "dir" => settings.dir.to_value(),
            "mode" => settings.mode.to_value(),
            "timeout" => settings.timeout.to_value(),
            "timestamps" => settings.timestamps.to_value(),
            "max-age" => settings.max_age.to_value(),
            "start" => settings.start.to_value(),
            "zero-copy" => settings.zero_copy.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for ShmRingSrc {}

impl ElementImpl for ShmRingSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Shared-memory ring source",
                "Source/Video",
                "Reads raw video that a shmringsink writes into shared memory: the latest frame, \
                 every frame, or frames named by handle; caps come from the ring",
                "shmring developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut caps = gst_video::VideoCapsBuilder::new().build();
            caps.merge(crate::units::encoded_caps());
            vec![gst::PadTemplate::new(
                "src",
                gst::PadDirection::Src,
                gst::PadPresence::Always,
                &caps,
            )
            .unwrap()]
        });
        TEMPLATES.as_ref()
    }
}

impl ShmRingSrc {
    pub(crate) fn post(&self, s: gst::Structure) {
        let _ = self
            .obj()
            .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
    }

    /// Runs `f` on the stream taken out of its mutex, so that no lock is held while it
    /// waits for a writer or a frame or copies one (docs/design.md, "One lock at a
    /// time"). BaseSrc calls `create` and `negotiate` from the streaming thread only,
    /// and `stop` only once that thread has stopped, so the stream is back in place
    /// before anybody else looks for it.
    fn with_stream<T>(
        &self,
        f: impl FnOnce(&mut Stream) -> Result<T, gst::FlowError>,
    ) -> Result<T, gst::FlowError> {
        let Some(mut stream) = self.stream.lock().unwrap().take() else {
            return Err(gst::FlowError::Flushing);
        };
        let result = f(&mut stream);
        *self.stream.lock().unwrap() = Some(stream);
        result
    }

    /// Attaches and makes the ring's current caps the pad's; nothing when the ring has
    /// none yet (its first frame brings them).
    fn adopt_ring_caps(&self, stream: &mut Stream) -> Result<(), gst::FlowError> {
        self.ensure_attached(stream)?;
        let reader = stream.follower.reader().expect("attached");
        match reader.current_caps() {
            Ok(Some((version, text))) => self.apply_caps(stream, version, &text).map(drop),
            Ok(None) => Ok(()),
            Err(e) => Err(self.read_error(stream, e)),
        }
    }

    fn interrupter(&self) -> Result<Interrupter, gst::FlowError> {
        self.interrupter
            .lock()
            .unwrap()
            .clone()
            .ok_or(gst::FlowError::Flushing)
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_nanos(self.settings.lock().unwrap().timeout)
    }

    /// Attaches to the ring, waiting for a writer as long as it takes (posting a
    /// message every `timeout`). Err(Flushing) when unlocked.
    pub(crate) fn ensure_attached(&self, stream: &mut Stream) -> Result<(), gst::FlowError> {
        if stream.follower.reader().is_some() {
            return Ok(());
        }
        if !stream.follower.attached_before() {
            // Settings as they are when the first ring is attached, as `mode` is read
            // at each `create`.
            let start = start_at(&self.settings.lock().unwrap());
            stream.follower.set_start(start);
        }
        let intr = self.interrupter()?;
        let timeout = self.timeout();
        let mut waited = Duration::ZERO;
        loop {
            match stream.follower.attach(timeout, &intr) {
                Ok(Follow::Attached(how)) => {
                    self.attached(stream, how);
                    return Ok(());
                }
                Ok(Follow::AlreadyAttached) => return Ok(()),
                Ok(Follow::TimedOut) => {
                    waited += timeout;
                    self.stats.lock().unwrap().timeouts += 1;
                    self.post(
                        gst::Structure::builder("shmringsrc-timeout")
                            .field("ring", stream.loc().display_name())
                            .field("path", stream.loc().path().display().to_string())
                            .field("waiting-for", "writer")
                            .field("waited", waited.as_nanos() as u64)
                            .build(),
                    );
                }
                Ok(Follow::Interrupted) => return Err(gst::FlowError::Flushing),
                Err(e) => {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenRead,
                        ("Cannot read ring {}: {}", stream.loc(), e)
                    );
                    return Err(gst::FlowError::Error);
                }
            }
        }
    }

    /// What attaching means for the element (the follower chose where reading starts):
    /// counts a re-attach, logs, enables zero-copy reads, and starts caps and DISCONT
    /// afresh.
    fn attached(&self, stream: &mut Stream, how: Attached) {
        let zero_copy = self.settings.lock().unwrap().zero_copy;
        match how {
            Attached::Reattached => self.stats.lock().unwrap().reattaches += 1,
            Attached::LookBack { ns, first, head } => gst::info!(
                CAT,
                imp = self,
                "looking back {} ms: from frame {first:?} of {head}",
                ns / 1_000_000
            ),
            Attached::Newest => {}
        }
        let r = stream.follower.reader_mut().expect("attached");
        gst::info!(
            CAT,
            imp = self,
            "attached to {} epoch {:016x} (writer pid {})",
            r.location(),
            r.epoch(),
            r.writer_pid()
        );
        if let Some(notice) = shmring_common::sigbus_guard_notice() {
            gst::info!(CAT, imp = self, "{notice}");
        }
        self.negotiated.lock().unwrap().slots = r.geometry().slot_count;
        if zero_copy {
            match r.enable_zero_copy() {
                Ok(true) => gst::debug!(CAT, imp = self, "zero-copy reads enabled"),
                Ok(false) => gst::info!(CAT, imp = self, "zero-copy reads not possible here (no write access to the ring, or its reader table is full): copying"),
                Err(e) => gst::warning!(CAT, imp = self, "zero-copy reads not possible: {e}; copying"),
            }
        }
        stream.discont = true;
        stream.caps_version = 0;
        stream.unit_clock.reset();
        let r = stream.follower.reader().expect("attached");
        if r.holds_units() && self.settings.lock().unwrap().mode == Mode::Latest {
            stream.unit_clock.start_live(crate::units::newest_time(r));
        }
    }

    pub(crate) fn read_error(&self, stream: &Stream, e: shmring_common::Error) -> gst::FlowError {
        gst::element_imp_error!(
            self,
            gst::ResourceError::Read,
            ("Reading ring {} failed: {}", stream.loc(), e)
        );
        gst::FlowError::Error
    }
}

impl BaseSrcImpl for ShmRingSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let Some(ring) = settings.ring.clone() else {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("No ring name: set the ring property (ring=cam1)")
            ));
        };
        let loc = RingLocation::parse(&ring, settings.dir.as_deref().map(std::path::Path::new))
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
        let intr = Interrupter::new().map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Cannot create an eventfd: {}", e)
            )
        })?;
        *self.interrupter.lock().unwrap() = Some(intr);
        self.flushing.store(false, Ordering::Release);
        *self.stats.lock().unwrap() = Stats::default();
        *self.stream.lock().unwrap() = Some(Stream {
            follower: Follower::new(loc, start_at(&settings)),
            allocator: Allocator::default(),
            caps_version: 0,
            caps: None,
            info: None,
            discont: true,
            stamper: Stamper::default(),
            unit_clock: Default::default(),
            gop: Default::default(),
            last_unit: None,
            gop_then: None,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(s) = self.stream.lock().unwrap().take() {
            s.allocator.stop();
        }
        *self.negotiated.lock().unwrap() = Negotiated::default();
        *self.interrupter.lock().unwrap() = None;
        *self.ring_pool.lock().unwrap() = None;
        self.requests.lock().unwrap().clear();
        Ok(())
    }

    fn decide_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        let ring_pool = query
            .allocation_pools()
            .next()
            .and_then(|(pool, ..)| pool)
            .filter(|p| p.has_option(shmring_common::RING_POOL_OPTION));
        if ring_pool.is_some() {
            gst::debug!(
                CAT,
                imp = self,
                "copying frames straight into the ring of a shmringsink downstream"
            );
            self.parent_decide_allocation(query)?;
        } else {
            // Frames are leased in place or copied into buffers of our own: any other
            // pool would be activated by BaseSrc (and its buffers allocated) for nothing.
            while query.allocation_pools().next().is_some() {
                query.remove_nth_allocation_pool(0);
            }
        }
        *self.ring_pool.lock().unwrap() = ring_pool;
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn negotiate(&self) -> Result<(), gst::LoggableError> {
        // Caps come from the ring. Before the first negotiation BaseSrc has none, and
        // the allocation query that follows this would go out without caps (a video
        // sink parsing it raises a critical): attach first, waiting for the writer as
        // create() would, and take the ring's current caps.
        let known = self.negotiated.lock().unwrap().caps.clone();
        if let Some(c) = known {
            return self
                .obj()
                .set_caps(&c)
                .map_err(|_| gst::loggable_error!(CAT, "downstream refused {c}"));
        }
        match self.with_stream(|stream| self.adopt_ring_caps(stream)) {
            Ok(()) => Ok(()),
            Err(gst::FlowError::Flushing) => Err(gst::loggable_error!(
                CAT,
                "stopped while waiting for the ring's caps"
            )),
            Err(e) => Err(gst::loggable_error!(CAT, "no caps from the ring: {e:?}")),
        }
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let known = self.negotiated.lock().unwrap().caps.clone();
        let caps = known.unwrap_or_else(|| self.obj().src_pad().pad_template_caps());
        Some(match filter {
            Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn query(&self, query: &mut gst::QueryRef) -> bool {
        if let gst::QueryViewMut::Latency(q) = query.view_mut() {
            let (frame, slots, encoded) = {
                let n = self.negotiated.lock().unwrap();
                (
                    n.frame_duration.unwrap_or(gst::ClockTime::ZERO),
                    n.slots.max(1),
                    n.caps.as_ref().is_some_and(|c| crate::units::is_encoded(c)),
                )
            };
            let (mode, timestamps, max_age) = {
                let s = self.settings.lock().unwrap();
                (s.mode, s.timestamps, s.max_age)
            };
            let held = match mode {
                Mode::Sequential => slots,
                _ => 1,
            };
            let (min, max) = timestamps::latency(
                frame,
                held,
                // Units keep the writer's times (units.rs): capture does not apply.
                timestamps == Timestamps::Capture && !encoded,
                gst::ClockTime::from_nseconds(max_age.min(timestamps::MAX_MAX_AGE_NS)),
            );
            q.set(true, min, max);
            return true;
        }
        BaseSrcImplExt::parent_query(self, query)
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(true, Ordering::Release);
        if let Some(i) = self.interrupter.lock().unwrap().as_ref() {
            i.interrupt();
        }
        let _q = self.requests.lock().unwrap();
        self.requests_cond.notify_all();
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(false, Ordering::Release);
        if let Some(i) = self.interrupter.lock().unwrap().as_ref() {
            i.clear();
        }
        Ok(())
    }
}

impl PushSrcImpl for ShmRingSrc {
    fn create(
        &self,
        _buffer: Option<&mut gst::BufferRef>,
    ) -> Result<CreateSuccess, gst::FlowError> {
        let mode = self.settings.lock().unwrap().mode;
        let buffer = self.with_stream(|stream| match mode {
            Mode::Handle => self.create_by_handle(stream),
            _ => self.create_streaming(stream, mode),
        })?;
        gst::trace!(CAT, imp = self, "frame {} out", buffer.offset());
        Ok(CreateSuccess::NewBuffer(buffer))
    }
}

/// Where the first ring is read from: the newest frame, or in sequential mode looking
/// back `start` ns. The rings of later writers are read from their first frame.
fn start_at(settings: &Settings) -> StartAt {
    match settings.mode {
        Mode::Sequential if settings.start > 0 => StartAt::LookBack(settings.start),
        _ => StartAt::Newest,
    }
}
