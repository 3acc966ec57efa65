//! The shmringsink element: properties, stats, caps and the ring they make, allocation,
//! render and events.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;

use gst_video::VideoInfo;
use shmring_common::{
    Lender, Origin, RingLocation, RingWriter, UnitWriter, WriterConfig, WriterState,
};

use crate::pool::RingPool;

pub(crate) static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "shmringsink",
        gst::DebugColorFlags::empty(),
        Some("shmring ring writer"),
    )
});

const DEFAULT_SLOTS: u32 = 0;
const DEFAULT_PERMS: u32 = 0o600;
const DEFAULT_POST_HANDLES: bool = false;
const DEFAULT_IGNORE_LATENCY: bool = true;
/// Slots lent to upstream through the proposed buffer pool: one being filled, one in
/// flight, one that the sink keeps as its last sample, and one to spare.
const DEFAULT_POOL_SLOTS: u32 = 4;
#[derive(Clone, Debug)]
struct Settings {
    ring: Option<String>,
    dir: Option<String>,
    slots: u32,
    perms: u32,
    post_handles: bool,
    lease_slots: u32,
    pool_slots: u32,
    ignore_latency: bool,
    history: u64,
    bitrate: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ring: None,
            dir: None,
            slots: DEFAULT_SLOTS,
            perms: DEFAULT_PERMS,
            post_handles: DEFAULT_POST_HANDLES,
            lease_slots: shmring_common::writer::DEFAULT_SPARES,
            pool_slots: DEFAULT_POOL_SLOTS,
            ignore_latency: DEFAULT_IGNORE_LATENCY,
            history: 0,
            bitrate: crate::units::DEFAULT_BITRATE,
        }
    }
}

#[derive(Default)]
struct Stats {
    frames: u64,
    /// Frames upstream wrote straight into the ring (our pool's buffers).
    frames_in_place: u64,
    /// Frames dropped because every slot they could go to was held by readers beyond
    /// their lease budget.
    frames_dropped: u64,
    bytes: u64,
    caps_changes: u64,
    rings_created: u64,
    /// The ring's name in handles, and the epoch and sequence of the last frame: its
    /// handle is made when asked for, not for every frame.
    ring_name: String,
    last: Option<(u64, u64)>,
    /// What the stats show of the current ring, copied when it is made, so that a
    /// property read never waits for the writer (which a frame copy holds).
    ring: Option<RingInfo>,
}

#[derive(Clone, Debug)]
struct RingInfo {
    bytes: u64,
    slots: u32,
    slot_size: u64,
    lease_slots: u32,
    pool_slots: u32,
    epoch: u64,
    bypass_cache: bool,
}

impl Stats {
    fn last_handle(&self) -> Option<String> {
        let (epoch, seq) = self.last?;
        let ring = self.ring_name.clone();
        Some(shmring_common::Handle { ring, epoch, seq }.to_string())
    }
}

impl RingInfo {
    fn of(w: &RingWriter) -> Self {
        let g = w.geometry();
        RingInfo {
            bytes: g.total_size,
            slots: g.slot_count,
            slot_size: g.slot_stride,
            lease_slots: w.lease_slots(),
            pool_slots: w.pool_slots(),
            epoch: w.epoch(),
            bypass_cache: w.bypasses_cache(),
        }
    }
}

pub(crate) struct State {
    pub(crate) loc: RingLocation,
    pub(crate) writer: Option<RingWriter>,
    /// The ring of units, instead of `writer`, while the caps are encoded video.
    pub(crate) units: Option<UnitWriter>,
    pub(crate) info: Option<gst_video::VideoInfo>,
    /// The ring's caps version for `info`.
    pub(crate) caps_version: u32,
}

#[derive(Default)]
pub struct ShmRingSink {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
}

#[glib::object_subclass]
impl ObjectSubclass for ShmRingSink {
    const NAME: &'static str = "GstShmRingSink";
    type Type = super::ShmRingSink;
    type ParentType = gst_base::BaseSink;
}

impl ObjectImpl for ShmRingSink {
    fn constructed(&self) {
        self.parent_constructed();
        // The sink writes a live frame as soon as it arrives (see send_event), so it
        // asks the pipeline for no processing time either.
        self.obj().set_processing_deadline(gst::ClockTime::ZERO);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("ring")
                    .nick("Ring")
                    .blurb("Ring name (letters, digits, '_', '-', '.'; in the ring directory) or an absolute path")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("dir")
                    .nick("Directory")
                    .blurb("Ring directory for named rings (default /dev/shm/shmring-<uid>, or $SHMRING_DIR)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("slots")
                    .nick("Slots")
                    .blurb("Frames the ring holds (0: half a second of video, 4 to 64, within 1 GiB)")
                    .maximum(shmring_common::layout::MAX_SLOTS)
                    .default_value(DEFAULT_SLOTS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("history")
                    .nick("History")
                    .blurb("With slots=0: nanoseconds of video the ring keeps, converted to slots at the caps' frame rate, up to 1024 slots and 1 GiB (0: half a second). For look-back readers (shmringsrc start=) and requests by capture time")
                    .default_value(0)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("bitrate")
                    .nick("Bit rate")
                    .blurb("For encoded video (H.264, H.265): the stream's bit rate in bits a second, a hint that sizes the ring with history (0: 30 s) of it, with half as much again to spare. A stream above it keeps less history")
                    .minimum(1)
                    .default_value(crate::units::DEFAULT_BITRATE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("perms")
                    .nick("Permissions")
                    .blurb("Permission bits of the ring file: 384 (0600) private, 416 (0640) group may read")
                    .maximum(0o777)
                    .default_value(DEFAULT_PERMS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("lease-slots")
                    .nick("Lease slots")
                    .blurb("Extra slots that readers may hold for zero-copy reads (shmringsrc zero-copy=true), about two per reader; kept within 1 GiB with the slots (but at least 2); 0 makes every reader copy")
                    .maximum(shmring_common::layout::MAX_SPARES)
                    .default_value(shmring_common::writer::DEFAULT_SPARES)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("pool-slots")
                    .nick("Pool slots")
                    .blurb("Extra slots lent to upstream as a buffer pool, so that it writes frames straight into the ring (zero-copy write); kept within 1 GiB with the slots and lease slots; 0 offers no pool and every frame is copied in")
                    .maximum(shmring_common::layout::MAX_SPARES)
                    .default_value(DEFAULT_POOL_SLOTS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("ignore-latency")
                    .nick("Ignore latency")
                    .blurb("Write each frame as soon as it arrives, ignoring the pipeline latency (rtspsrc alone sets 2 s) that would hold it back: readers in other processes present frames on their own clocks. false: wait for it like any sink (sync, max-lateness and qos then apply to the latency-shifted time)")
                    .default_value(DEFAULT_IGNORE_LATENCY)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("post-handles")
                    .nick("Post handles")
                    .blurb("Post an element message \"shmringsink-handle\" with the handle of every committed frame")
                    .default_value(DEFAULT_POST_HANDLES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("last-handle")
                    .nick("Last handle")
                    .blurb("Handle (<ring>:<epoch>:<seq>) of the last committed frame")
                    .read_only()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("frames, frames-in-place (written by upstream straight into the ring, not copied), frames-dropped (every slot held by readers beyond their lease budget), bytes, caps-changes, rings-created, ring-bytes (shared memory the ring takes), slots, slot-size, lease-slots, pool-slots, epoch, bypass-cache (frames are copied in with non-temporal stores: rings whose slots take more than half the CPU's last-level cache)")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "ring" => {
                let ring: Option<String> = value.get().expect("type checked upstream");
                if let Some(r) = &ring {
                    // Say it now; start() refuses it again with an element error.
                    if let Err(e) = RingLocation::parse(r, None) {
                        gst::error!(CAT, imp = self, "{e}");
                    }
                }
                settings.ring = ring;
            }
            "dir" => settings.dir = value.get().expect("type checked upstream"),
            "slots" => settings.slots = value.get().expect("type checked upstream"),
            "history" => settings.history = value.get().expect("type checked upstream"),
            "bitrate" => settings.bitrate = value.get().expect("type checked upstream"),
            "perms" => settings.perms = value.get().expect("type checked upstream"),
            "post-handles" => settings.post_handles = value.get().expect("type checked upstream"),
            "lease-slots" => settings.lease_slots = value.get().expect("type checked upstream"),
            "pool-slots" => settings.pool_slots = value.get().expect("type checked upstream"),
            "ignore-latency" => {
                settings.ignore_latency = value.get().expect("type checked upstream")
            }
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        // One lock at a time: the statistics are not read under `settings`.
        match pspec.name() {
            "last-handle" => return self.stats.lock().unwrap().last_handle().to_value(),
            "stats" => return self.stats_structure().to_value(),
            _ => {}
        }
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "ring" => settings.ring.to_value(),
            "dir" => settings.dir.to_value(),
            "slots" => settings.slots.to_value(),
            "history" => settings.history.to_value(),
            "bitrate" => settings.bitrate.to_value(),
            "perms" => settings.perms.to_value(),
            "post-handles" => settings.post_handles.to_value(),
            "lease-slots" => settings.lease_slots.to_value(),
            "pool-slots" => settings.pool_slots.to_value(),
            "ignore-latency" => settings.ignore_latency.to_value(),
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for ShmRingSink {}

impl ElementImpl for ShmRingSink {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Shared-memory ring sink",
                "Sink/Video",
                "Writes raw video, or H.264/H.265 access units, into a seqlocked ring in shared \
                 memory that any number of shmringsrc elements in other processes read; never \
                 waits for a reader",
                "shmring developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let mut caps = gst_video::VideoCapsBuilder::new()
                .format_list(preferred_formats())
                .build();
            caps.merge(crate::units::encoded_caps());
            vec![gst::PadTemplate::new(
                "sink",
                gst::PadDirection::Sink,
                gst::PadPresence::Always,
                &caps,
            )
            .unwrap()]
        });
        TEMPLATES.as_ref()
    }

    fn send_event(&self, event: gst::Event) -> bool {
        // A live pipeline tells its sinks to render each frame its latency after the
        // frame's timestamp, so that they all present it at once: rtspsrc alone asks
        // for 2 s. Readers in other processes keep their own clocks and present frames
        // themselves, so holding a frame back here would only make it late for all of
        // them. The sink keeps no latency: a live frame, which arrives after its
        // timestamp, is written at once, and a non-live stream (a file, a test source)
        // is still paced by its timestamps (`sync`).
        // With ignore-latency=false the sink waits like any other (a recording that
        // must line up with other sinks of the same pipeline, say).
        if let gst::EventView::Latency(l) = event.view() {
            if self.settings.lock().unwrap().ignore_latency {
                gst::debug!(
                    CAT,
                    imp = self,
                    "writing frames at once instead of {} after their timestamps",
                    l.latency()
                );
                return true;
            }
        }
        self.parent_send_event(event)
    }
}

impl ShmRingSink {
    fn stats_structure(&self) -> gst::Structure {
        let stats = self.stats.lock().unwrap();
        let mut s = gst::Structure::builder("application/x-shmringsink-stats")
            .field("frames", stats.frames)
            .field("frames-in-place", stats.frames_in_place)
            .field("frames-dropped", stats.frames_dropped)
            .field("bytes", stats.bytes)
            .field("caps-changes", stats.caps_changes)
            .field("rings-created", stats.rings_created)
            .build();
        if let Some(r) = &stats.ring {
            s.set("ring-bytes", r.bytes);
            s.set("slots", r.slots);
            s.set("slot-size", r.slot_size);
            s.set("lease-slots", r.lease_slots);
            s.set("pool-slots", r.pool_slots);
            s.set("epoch", format!("{:016x}", r.epoch));
            s.set("bypass-cache", r.bypass_cache);
        }
        s
    }

    /// Runs `f` on the state taken out of its mutex, so that no lock is held while it
    /// copies a frame or makes a ring (docs/design.md, "One lock at a time"). BaseSink
    /// renders and sets caps on the streaming thread only, and stops only once that
    /// thread has stopped, so the state is back before anybody else looks for it.
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        let mut state = self.state.lock().unwrap().take()?;
        let result = f(&mut state);
        *self.state.lock().unwrap() = Some(state);
        Some(result)
    }

    pub(crate) fn note_caps_change(&self) {
        self.stats.lock().unwrap().caps_changes += 1;
    }

    /// Counts a new ring and copies what the stats show of it.
    pub(crate) fn note_ring(&self, w: &RingWriter) {
        let mut stats = self.stats.lock().unwrap();
        stats.rings_created += 1;
        stats.ring = Some(RingInfo::of(w));
    }

    /// Makes or changes the ring for `caps` (`set_caps` with the state in hand).
    fn set_caps_in(
        &self,
        state: &mut State,
        caps: &gst::Caps,
        info: VideoInfo,
        caps_text: &str,
        config: &WriterConfig,
    ) -> Result<(), gst::LoggableError> {
        // Raw video after encoded: the ring of units is replaced by a ring of frames
        // under the same name (readers follow); if that fails, it stays as it was.
        let mut from_units = false;
        if state.writer.is_none() {
            if let Some(units) = state.units.as_mut() {
                units.ring_mut().replace(config).map_err(|e| {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenWrite,
                        (
                            "Cannot replace ring {} of units by frames: {}",
                            state.loc,
                            e
                        )
                    );
                    gst::loggable_error!(CAT, "{e}")
                })?;
                state.writer = state.units.take().map(UnitWriter::into_ring);
                self.stats.lock().unwrap().rings_created += 1;
                from_units = true;
            }
        }
        let fits = |w: &RingWriter| w.slot_capacity() >= info.size() as u64;
        // The writer stays in the state while it changes: a caps change that fails
        // leaves the ring as it was, still written with the caps it had.
        let writer = match state.writer.as_mut() {
            // Made for these caps just now.
            Some(w) if from_units => {
                state.caps_version = w.caps_version();
                w
            }
            Some(w) if fits(w) => {
                state.caps_version = w.set_caps(caps_text).map_err(|e| {
                    gst::element_imp_error!(self, gst::StreamError::Format, ("{}", e));
                    gst::loggable_error!(CAT, "{e}")
                })?;
                self.stats.lock().unwrap().caps_changes += 1;
                w
            }
            Some(w) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "frames of {} bytes need a larger ring: replacing it",
                    info.size()
                );
                w.replace(config).map_err(|e| {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenWrite,
                        ("Cannot replace ring: {}", e)
                    );
                    gst::loggable_error!(CAT, "{e}")
                })?;
                let mut stats = self.stats.lock().unwrap();
                stats.caps_changes += 1;
                stats.rings_created += 1;
                state.caps_version = w.caps_version();
                w
            }
            None => {
                let w = RingWriter::create(&state.loc, config).map_err(|e| {
                    gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenWrite,
                        ("Cannot create ring {}: {}", state.loc, e)
                    );
                    gst::loggable_error!(CAT, "{e}")
                })?;
                if let Origin::TookOver { dead_pid } = w.origin() {
                    gst::warning!(
                        CAT,
                        imp = self,
                        "replaced the stale ring of dead writer pid {dead_pid} at {}",
                        state.loc
                    );
                }
                self.stats.lock().unwrap().rings_created += 1;
                state.caps_version = w.caps_version();
                state.writer.insert(w)
            }
        };
        gst::info!(
            CAT,
            imp = self,
            "ring {} epoch {:016x}: {} slots of {} bytes for {caps}",
            state.loc,
            writer.epoch(),
            writer.geometry().slot_count,
            writer.slot_capacity()
        );
        self.stats.lock().unwrap().ring = Some(RingInfo::of(writer));
        if let Some(notice) = shmring_common::sigbus_guard_notice() {
            gst::info!(CAT, imp = self, "{notice}");
        }
        state.info = Some(info);
        Ok(())
    }

    /// The caps of an allocation query, their frame size, and a lender of the current
    /// ring, when the ring lends slots and they hold frames of those caps.
    fn lender_for(&self, query: &gst::query::Allocation) -> Option<(gst::Caps, u32, Lender)> {
        let caps = query.get_owned().0?;
        let size = u32::try_from(VideoInfo::from_caps(&caps).ok()?.size()).ok()?;
        let guard = self.state.lock().unwrap();
        let writer = guard.as_ref()?.writer.as_ref()?;
        (writer.pool_slots() > 0 && size > 0 && u64::from(size) <= writer.slot_capacity())
            .then(|| (caps, size, writer.lender()))
    }
}

impl BaseSinkImpl for ShmRingSink {
    /// Our template, in our order of preference: the default answer would put an
    /// upstream filter's order first, and an upstream free to choose would pick the
    /// first format of GStreamer's list.
    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let ours = self.obj().sink_pad().pad_template_caps();
        Some(match filter {
            Some(f) => ours.intersect_with_mode(f, gst::CapsIntersectMode::First),
            None => ours,
        })
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let Some(ring) = settings.ring else {
            return Err(gst::error_msg!(
                gst::ResourceError::Settings,
                ("No ring name: set the ring property (ring=cam1)")
            ));
        };
        let loc = RingLocation::parse(&ring, settings.dir.as_deref().map(std::path::Path::new))
            .map_err(|e| gst::error_msg!(gst::ResourceError::Settings, ("{}", e)))?;
        gst::debug!(CAT, imp = self, "will write ring {loc}");
        *self.stats.lock().unwrap() = Stats {
            ring_name: loc.display_name().to_owned(),
            ..Stats::default()
        };
        *self.state.lock().unwrap() = Some(State {
            loc,
            writer: None,
            units: None,
            info: None,
            caps_version: 0,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping the writer marks the ring closed, wakes readers and removes the file.
        *self.state.lock().unwrap() = None;
        Ok(())
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        if crate::units::is_encoded(caps) {
            let (sizing, perms) = {
                let s = self.settings.lock().unwrap();
                (
                    crate::units::unit_sizing(caps, s.history, s.bitrate),
                    s.perms,
                )
            };
            return self
                .with_state(|state| self.set_caps_units(state, caps, &sizing, perms))
                .unwrap_or_else(|| Err(gst::loggable_error!(CAT, "caps before start")));
        }
        let info = gst_video::VideoInfo::from_caps(caps).map_err(|_| {
            gst::loggable_error!(CAT, "caps {caps} are not raw video GStreamer can describe")
        })?;
        let caps_text = caps.to_string();
        let slots = {
            let s = self.settings.lock().unwrap();
            crate::sizing::slot_count(s.slots, s.history, &info)
        };
        let (settings_perms, spares, loans) = {
            let s = self.settings.lock().unwrap();
            let size = info.size() as u64;
            let spares = crate::sizing::lease_slots_within_budget(s.lease_slots, slots, size);
            let loans = crate::sizing::pool_slots_within_budget(s.pool_slots, slots, spares, size);
            (s.perms, spares, loans)
        };
        let config = WriterConfig {
            slots,
            max_frame: info.size().max(1) as u64,
            perms: settings_perms,
            spares,
            loans,
            caps: Some(caps_text.clone()),
        };
        self.with_state(|state| self.set_caps_in(state, caps, info, &caps_text, &config))
            .unwrap_or_else(|| Err(gst::loggable_error!(CAT, "caps before start")))
    }

    fn propose_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        if let Some((caps, size, lender)) = self.lender_for(query) {
            let pool = RingPool::new(lender);
            let mut config = pool.config();
            config.set_params(Some(&caps), size, 0, 0);
            pool.set_config(config)
                .map_err(|e| gst::loggable_error!(CAT, "cannot configure the ring pool: {e}"))?;
            query.add_allocation_pool(Some(&pool), size, 0, 0);
            gst::debug!(CAT, imp = self, "proposed a pool of ring slots for {caps}");
            // No VideoMeta here: an element whose frames need other strides must then
            // write them out in the default layout, and it does so into our pool, that
            // is, into the ring. A decoder with VideoMeta downstream would push the
            // frames of its own pool instead, which we would copy again: avdec_h264 did
            // so for every frame whose height is a multiple of 16 (720p, 4K).
        } else {
            // Upstream may hand us frames with any strides and plane offsets: we copy
            // them plane by plane honouring them, so upstream need not copy first.
            query.add_allocation_meta::<gst_video::VideoMeta>(None);
        }
        self.parent_propose_allocation(query)
    }

    fn render(&self, buffer: &gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let post_handles = self.settings.lock().unwrap().post_handles;
        let written = self
            .with_state(|state| match state.units {
                Some(_) => self.write_unit(state, buffer),
                None => self.write_frame(state, buffer),
            })
            .unwrap_or(Err(gst::FlowError::Flushing))?;
        let mut stats = self.stats.lock().unwrap();
        let Some((seq, in_place, size, epoch)) = written else {
            stats.frames_dropped += 1;
            return Ok(gst::FlowSuccess::Ok);
        };
        stats.frames += 1;
        stats.frames_in_place += u64::from(in_place);
        stats.bytes += size as u64;
        stats.last = Some((epoch, seq));
        let handle = post_handles.then(|| stats.last_handle()).flatten();
        drop(stats);
        if let Some(handle) = handle {
            self.post_handle(&handle, seq, buffer.pts());
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn event(&self, event: gst::Event) -> bool {
        let state = match event.view() {
            gst::EventView::Eos(_) => Some(WriterState::Eos),
            gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_) => {
                Some(WriterState::Live)
            }
            _ => None,
        };
        if let Some(state) = state {
            if let Some(s) = self.state.lock().unwrap().as_mut() {
                let units = s.units.as_mut().map(UnitWriter::ring_mut);
                if let Some(w) = s.writer.as_mut().or(units) {
                    w.set_state(state);
                }
            }
        }
        self.parent_event(event)
    }
}

/// Every raw video format, the common ones first in the order GStreamer's video sinks
/// prefer them, so that an upstream free to choose (`videotestsrc`) picks I420 rather
/// than the first of GStreamer's list (a 64-bit RGB format: 8 bytes a pixel, and a
/// format few readers want).
fn preferred_formats() -> Vec<gst_video::VideoFormat> {
    use gst_video::VideoFormat::*;
    let first = [
        I420, Nv12, Yv12, Yuy2, Uyvy, Bgrx, Rgbx, Bgra, Rgba, Bgr, Rgb, Gray8, Gray16Le,
    ];
    first
        .into_iter()
        .chain(gst_video::VideoFormat::iter_raw().filter(|f| !first.contains(f)))
        .collect()
}
