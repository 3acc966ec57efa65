//! `handle` mode: frames requested by handle or capture time, delivered or answered in turn.

use std::sync::atomic::Ordering;

use gst::subclass::prelude::*;

use shmring_common::reader::LIVENESS_CHECK_INTERVAL;
use shmring_common::{At, AtRule, ByHandle, Frame, Handle, Next, Payload};

use crate::buffers::{OutBuf, Skipped};
use crate::imp::{ShmRingSrc, Stream, CAT};
use crate::Mode;

fn rule_name(rule: AtRule) -> &'static str {
    match rule {
        AtRule::Nearest => "nearest",
        AtRule::AtOrBefore => "at-or-before",
        AtRule::AtOrAfter => "at-or-after",
    }
}

/// A frame asked for in `handle` mode.
#[derive(Clone, Debug)]
pub(crate) enum Request {
    Handle(Handle),
    /// The frame captured closest to this wall-clock time (ns) by the rule.
    At(u64, AtRule),
}

impl ShmRingSrc {
    fn post_handle_status(&self, handle: &str, status: &str, reason: Option<&str>) {
        let mut b = gst::Structure::builder("shmringsrc-handle")
            .field("handle", handle)
            .field("status", status);
        if let Some(r) = reason {
            b = b.field("reason", r);
        }
        self.post(b.build());
    }

    /// The `request-frame` action signal: queue a frame for `handle` mode.
    pub(crate) fn request_frame(&self, text: &str) -> bool {
        match text.parse::<Handle>() {
            Ok(h) => {
                self.requests.lock().unwrap().push_back(Request::Handle(h));
                self.requests_cond.notify_all();
                true
            }
            Err(e) => {
                gst::warning!(CAT, imp = self, "{e}");
                self.count(|s| s.handles_invalid += 1);
                self.post_handle_status(text, "invalid", Some(&e.to_string()));
                false
            }
        }
    }

    /// The `request-frame-at` action signal: queue a request by capture time.
    pub(crate) fn request_frame_at(&self, at: u64, rule: &str) -> bool {
        match rule.parse::<AtRule>() {
            Ok(r) => {
                self.requests.lock().unwrap().push_back(Request::At(at, r));
                self.requests_cond.notify_all();
                true
            }
            Err(e) => {
                gst::warning!(CAT, imp = self, "{e}");
                self.count(|s| s.handles_invalid += 1);
                self.post_at_status(at, rule, None, "invalid", Some(&e));
                false
            }
        }
    }

    /// The answer to a `request-frame-at`: a `shmringsrc-handle` message with the
    /// capture time and rule asked for, and the handle chosen when there is one.
    fn post_at_status(
        &self,
        at: u64,
        rule: &str,
        chosen: Option<&str>,
        status: &str,
        reason: Option<&str>,
    ) {
        let mut b = gst::Structure::builder("shmringsrc-handle")
            .field("handle", chosen.unwrap_or(""))
            .field("capture-time", at)
            .field("rule", rule)
            .field("status", status);
        if let Some(r) = reason {
            b = b.field("reason", r);
        }
        self.post(b.build());
    }

    /// The next request of `request-frame`, waiting as long as it takes. While it waits
    /// it looks at the ring's writer every `LIVENESS_CHECK_INTERVAL`: EOS ends the
    /// stream, and a writer gone (dead, closed, or its ring replaced) drops the reader,
    /// so that the next request attaches to whichever ring then has the name.
    fn next_request(&self, stream: &mut Stream) -> Result<Request, gst::FlowError> {
        loop {
            {
                let mut q = self.requests.lock().unwrap();
                if self.flushing.load(Ordering::Acquire) {
                    return Err(gst::FlowError::Flushing);
                }
                if let Some(h) = q.pop_front() {
                    return Ok(h);
                }
                q = self
                    .requests_cond
                    .wait_timeout(q, LIVENESS_CHECK_INTERVAL)
                    .unwrap()
                    .0;
                if self.flushing.load(Ordering::Acquire) {
                    return Err(gst::FlowError::Flushing);
                }
                if let Some(h) = q.pop_front() {
                    return Ok(h);
                }
            }
            // The requests' lock is not held while the ring is looked at: one lock at a
            // time. A writer that ended its stream and then left reads as closed: the
            // end of the stream is the news.
            if stream.follower.reader().is_some_and(|r| r.stream_ended()) {
                gst::info!(CAT, imp = self, "writer of {} reached EOS", stream.loc());
                return Err(gst::FlowError::Eos);
            }
            if let Some(why) = stream.follower.writer_left() {
                gst::info!(
                    CAT,
                    imp = self,
                    "writer of {} is gone ({why:?}): the next request re-attaches",
                    stream.loc()
                );
                stream.follower.writer_gone();
            }
        }
    }

    pub(crate) fn create_by_handle(
        &self,
        stream: &mut Stream,
    ) -> Result<gst::Buffer, gst::FlowError> {
        loop {
            if let Some(seq) = stream.gop.pop_front() {
                if let Some(buffer) = self.deliver_gop_unit(stream, seq)? {
                    return Ok(buffer);
                }
                continue;
            }
            if let Some((handle, at)) = stream.gop_then.take() {
                if let Some(buffer) = self.deliver_handle(stream, &handle, at)? {
                    return Ok(buffer);
                }
                continue;
            }
            let (handle, at) = match self.next_request(stream)? {
                Request::Handle(h) => (h, None),
                Request::At(t, rule) => match self.resolve_at(stream, t, rule)? {
                    Ok(h) => (h, Some((t, rule))),
                    Err((status, reason)) => {
                        self.count(|s| s.handle_failed(status));
                        self.post_at_status(t, rule_name(rule), None, status, Some(reason));
                        continue;
                    }
                },
            };
            if let Some(buffer) = self.deliver_handle(stream, &handle, at)? {
                return Ok(buffer);
            }
        }
    }

    /// For a unit of an encoded ring this source reads, the first unit to output
    /// before it so that a decoder can show it: its keyframe, or the unit after the
    /// last one output when that is of the same GOP; and whether it is the keyframe.
    /// None for a keyframe, a frame, the next unit of a GOP, or a unit not held.
    fn gop_start(&self, stream: &Stream, handle: &Handle) -> Option<(u64, bool)> {
        let reader = stream.follower.reader()?;
        if !reader.holds_units() || reader.epoch() != handle.epoch {
            return None;
        }
        let keyframe = reader.keyframe_of_unit(handle.seq).ok()??;
        let start = match stream.last_unit {
            Some((epoch, last))
                if epoch == handle.epoch && keyframe <= last && last < handle.seq =>
            {
                last + 1
            }
            _ => keyframe,
        };
        (start < handle.seq).then_some((start, start == keyframe))
    }

    /// Answers a request (by handle, or by capture time when `at` says so).
    fn answer(
        &self,
        handle: &Handle,
        at: Option<(u64, AtRule)>,
        status: &str,
        reason: Option<&str>,
    ) {
        let text = handle.to_string();
        match at {
            Some((t, rule)) => self.post_at_status(t, rule_name(rule), Some(&text), status, reason),
            None => self.post_handle_status(&text, status, reason),
        }
    }

    /// Outputs unit `seq` of a requested unit's GOP, without an answer of its own;
    /// None (and the rest of the GOP dropped) when it is gone.
    fn deliver_gop_unit(
        &self,
        stream: &mut Stream,
        seq: u64,
    ) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let Some(reader) = stream.follower.reader() else {
            stream.gop.clear();
            return Ok(None);
        };
        let handle = Handle {
            ring: stream.loc().display_name().to_owned(),
            epoch: reader.epoch(),
            seq,
        };
        if let ByHandle::Frame(f) = self.read_handle(stream, &handle)? {
            let f = Frame {
                data: Payload::Copied(f.data),
                info: f.info,
                missed: f.missed,
                torn_retries: f.torn_retries,
            };
            if let Ok(buffer) = self.to_buffer(stream, f, Mode::Handle)? {
                stream.last_unit = Some((handle.epoch, seq));
                return Ok(Some(buffer));
            }
        }
        gst::debug!(CAT, imp = self, "unit {seq} of a requested GOP is gone");
        stream.gop.clear();
        if let Some((request, at)) = stream.gop_then.take() {
            self.count(|s| s.handles_gone += 1);
            let why = format!("unit {seq} of its GOP was overwritten before it went out");
            self.answer(&request, at, "gone", Some(&why));
        }
        Ok(None)
    }

    /// The handle of the frame a request by capture time names, or why there is none.
    #[allow(clippy::type_complexity)]
    fn resolve_at(
        &self,
        stream: &mut Stream,
        at: u64,
        rule: AtRule,
    ) -> Result<Result<Handle, (&'static str, &'static str)>, gst::FlowError> {
        self.ensure_attached(stream)?;
        if stream.follower.drop_if_gone() {
            self.ensure_attached(stream)?;
        }
        for attempt in 0..2 {
            let reader = stream.follower.reader().expect("attached");
            let found = reader.seq_at(at, rule);
            match found.map_err(|e| self.read_error(stream, e))? {
                At::Frame(seq) => {
                    let reader = stream.follower.reader().expect("attached");
                    return Ok(Ok(Handle {
                        ring: stream.loc().display_name().to_owned(),
                        epoch: reader.epoch(),
                        seq,
                    }));
                }
                At::Gone => return Ok(Err(("gone", "every frame captured then was overwritten"))),
                At::NotYet if attempt == 0 => {
                    // Wait for the next frame, once, as a handle not written yet does.
                    let reader = stream.follower.reader_mut().expect("attached");
                    let next = reader.head() + 1;
                    let waited = reader.wait_for_seq(next, self.timeout());
                    if let Some(Next::Interrupted) =
                        waited.map_err(|e| self.read_error(stream, e))?
                    {
                        return Err(gst::FlowError::Flushing);
                    }
                }
                At::NotYet => {}
            }
        }
        Ok(Err((
            "not-yet",
            "no frame captured then was written within the timeout",
        )))
    }

    /// Reads and outputs the frame `request` names, or posts why not (None).
    fn deliver_handle(
        &self,
        stream: &mut Stream,
        request: &Handle,
        at: Option<(u64, AtRule)>,
    ) -> Result<Option<gst::Buffer>, gst::FlowError> {
        let timeout = self.timeout();
        let text = request.to_string();
        let post = |status: &str, reason: Option<&str>| match at {
            Some((t, rule)) => self.post_at_status(t, rule_name(rule), Some(&text), status, reason),
            None => self.post_handle_status(&text, status, reason),
        };
        if request.ring != stream.loc().display_name() {
            self.count(|s| s.handles_gone += 1);
            post(
                "other-ring",
                Some(&format!(
                    "this source reads ring {}",
                    stream.loc().display_name()
                )),
            );
            return Ok(None);
        }
        self.ensure_attached(stream)?;
        // A handle of another epoch may be of a new writer that this reader has not
        // followed yet.
        if stream.follower.reader().expect("attached").epoch() != request.epoch
            && stream.follower.drop_if_gone()
        {
            self.ensure_attached(stream)?;
        }
        let mut result = self.read_handle(stream, request)?;
        if matches!(result, ByHandle::NotYet) {
            let reader = stream.follower.reader_mut().expect("attached");
            match reader
                .wait_for_seq(request.seq, timeout)
                .map_err(|e| self.read_error(stream, e))?
            {
                Some(Next::Interrupted) => return Err(gst::FlowError::Flushing),
                Some(Next::Eos) => {
                    self.count(|s| s.handles_not_yet += 1);
                    post(
                        "not-yet",
                        Some("the writer ended its stream before writing it"),
                    );
                    return Err(gst::FlowError::Eos);
                }
                Some(Next::WriterGone(_)) => {
                    stream.follower.writer_gone();
                    self.ensure_attached(stream)?;
                }
                _ => {}
            }
            result = self.read_handle(stream, request)?;
        }
        if matches!(result, ByHandle::Frame(_)) {
            if let Some((start, fresh)) = self.gop_start(stream, request) {
                // Encoded video: the units before it first, from its keyframe (or
                // from the last unit output, in the same GOP), so that a decoder can
                // show it; the request is answered when its own unit goes out.
                stream.gop = (start..request.seq).collect();
                stream.gop_then = Some((request.clone(), at));
                if fresh {
                    stream.unit_clock.reset();
                    stream.discont = true;
                }
                return Ok(None);
            }
            let units = stream.follower.reader().is_some_and(|r| r.holds_units());
            let next_of_last =
                stream.last_unit == Some((request.epoch, request.seq.wrapping_sub(1)));
            if units && !next_of_last {
                // A keyframe asked for afresh: its stamps start from now.
                stream.unit_clock.reset();
                stream.discont = true;
            }
        }
        match result {
            ByHandle::Frame(f) => {
                let f = Frame {
                    data: Payload::Copied(f.data),
                    info: f.info,
                    missed: f.missed,
                    torn_retries: f.torn_retries,
                };
                match self.to_buffer(stream, f, Mode::Handle)? {
                    Ok(buffer) => {
                        stream.last_unit = Some((request.epoch, request.seq));
                        self.count(|s| s.handles_delivered += 1);
                        post("delivered", None);
                        return Ok(Some(buffer));
                    }
                    Err(Skipped::CapsGone) => {
                        self.count(|s| s.handles_gone += 1);
                        post(
                            "gone",
                            Some("its caps were overwritten by two later caps changes"),
                        );
                    }
                    // Counted as too-late or invalid by to_buffer.
                    Err(Skipped::Dropped(d)) => post(d.status(), Some(&d.reason())),
                }
            }
            ByHandle::Gone => {
                self.count(|s| s.handles_gone += 1);
                post("gone", Some("overwritten, or of another writer epoch"));
            }
            ByHandle::NotYet => {
                self.count(|s| s.handles_not_yet += 1);
                post("not-yet", Some("not written within the timeout"));
            }
        }
        Ok(None)
    }

    fn read_handle(
        &self,
        stream: &mut Stream,
        request: &Handle,
    ) -> Result<ByHandle<OutBuf>, gst::FlowError> {
        let reader = stream.follower.reader_mut().expect("attached");
        let allocator = &stream.allocator;
        reader
            .by_handle(request, |i| allocator.alloc(i))
            .map_err(|e| self.read_error(stream, e))
    }
}
