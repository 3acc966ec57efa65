//! `shmring metrics`: every ring and reader of a directory as Prometheus metrics, read
//! from the rings at each scrape.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use shmring_common::WriterStatus;

use crate::{open, rates, reader_total, ring_names, state_name, Result};

/// One reading of a ring.
struct RingSample {
    ring: String,
    committed: u64,
    in_place: u64,
    aborted: u64,
    fps: f64,
    capture_age: f64,
    slots: i64,
    bytes: i64,
    writer_pid: i64,
    writer_up: i64,
    state: &'static str,
    epoch_changes: u64,
    readers: i64,
    readers_without_entry: i64,
    per_reader: Vec<ReaderSample>,
}

struct ReaderSample {
    pid: String,
    received: u64,
    missed: u64,
    torn: u64,
    leases: i64,
    behind: i64,
}

/// Reads the rings at each scrape. Remembers each ring's epoch between scrapes, to
/// count its writer's restarts.
#[derive(Debug)]
struct RingCollector {
    dir: PathBuf,
    epochs: Mutex<HashMap<String, (u64, u64)>>,
}

impl RingCollector {
    fn samples(&self) -> Vec<RingSample> {
        use std::sync::atomic::Ordering::Relaxed;
        let names = ring_names(&self.dir).unwrap_or_default();
        let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = vec![];
        for name in names {
            let Ok(r) = open(&self.dir, &name) else {
                continue; // not a ring we can read: `shmring ls` says why
            };
            let sb = r.superblock();
            let rt = rates(&r);
            let status = r.writer_status();
            let entry = epochs.entry(name.clone()).or_insert((r.epoch(), 0));
            if entry.0 != r.epoch() {
                *entry = (r.epoch(), entry.1 + 1);
            }
            let head = r.head();
            let listed = r.readers();
            out.push(RingSample {
                committed: sb.committed.load(Relaxed),
                in_place: sb.committed_in_place.load(Relaxed),
                aborted: sb.aborted.load(Relaxed),
                fps: rt.fps.unwrap_or(0.0),
                capture_age: rt.capture_latency.map_or(f64::NAN, |d| d.as_secs_f64()),
                slots: i64::from(r.geometry().slot_count),
                bytes: r.geometry().total_size as i64,
                writer_pid: i64::from(r.writer_pid()),
                writer_up: i64::from(matches!(status, WriterStatus::Live | WriterStatus::Eos)),
                state: state_name(status),
                epoch_changes: entry.1,
                readers: reader_total(&r) as i64,
                readers_without_entry: (reader_total(&r) - listed.len()) as i64,
                per_reader: listed
                    .iter()
                    .map(|p| ReaderSample {
                        pid: p.pid.to_string(),
                        received: p.received,
                        missed: p.missed,
                        torn: p.torn,
                        leases: i64::from(p.leases),
                        behind: head.saturating_sub(p.last_seq) as i64,
                    })
                    .collect(),
                ring: name,
            });
        }
        out
    }
}

/// Writes one metric family: its descriptor, then a value per label set.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: impl IntoIterator<Item = (Vec<(&'static str, String)>, M)>,
) -> std::result::Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in values {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for RingCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::result::Result<(), std::fmt::Error> {
        let rings = self.samples();
        let ring = |s: &RingSample| vec![("ring", s.ring.clone())];
        let counter = |f: fn(&RingSample) -> u64| {
            rings
                .iter()
                .map(move |s| (ring(s), ConstCounter::new(f(s))))
                .collect::<Vec<_>>()
        };
        let gauge = |f: fn(&RingSample) -> i64| {
            rings
                .iter()
                .map(move |s| (ring(s), ConstGauge::new(f(s))))
                .collect::<Vec<_>>()
        };
        let real = |f: fn(&RingSample) -> f64| {
            rings
                .iter()
                .map(move |s| (ring(s), ConstGauge::new(f(s))))
                .collect::<Vec<_>>()
        };
        use MetricType::{Counter, Gauge};
        family(
            &mut e,
            "shmring_frames_committed",
            "Frames committed in the ring's current epoch",
            Counter,
            counter(|s| s.committed),
        )?;
        family(
            &mut e,
            "shmring_frames_in_place",
            "Frames written in place (no copy)",
            Counter,
            counter(|s| s.in_place),
        )?;
        family(
            &mut e,
            "shmring_frames_aborted",
            "Frames begun and abandoned",
            Counter,
            counter(|s| s.aborted),
        )?;
        family(&mut e, "shmring_epoch_changes", "Times the ring was made anew (writer restarted or ring replaced) since this exporter started", Counter, counter(|s| s.epoch_changes))?;
        family(
            &mut e,
            "shmring_frame_rate",
            "Frames per second over the last second",
            Gauge,
            real(|s| s.fps),
        )?;
        family(
            &mut e,
            "shmring_capture_age_seconds",
            "Age of the newest frame since its capture (wall clock)",
            Gauge,
            real(|s| s.capture_age),
        )?;
        family(
            &mut e,
            "shmring_slots",
            "Frames the ring holds",
            Gauge,
            gauge(|s| s.slots),
        )?;
        family(
            &mut e,
            "shmring_ring_bytes",
            "Shared memory the ring file takes",
            Gauge,
            gauge(|s| s.bytes),
        )?;
        family(
            &mut e,
            "shmring_writer_pid",
            "The writer's pid",
            Gauge,
            gauge(|s| s.writer_pid),
        )?;
        family(
            &mut e,
            "shmring_writer_up",
            "1 while the writer is alive (live or at EOS), 0 when it is dead or closed",
            Gauge,
            gauge(|s| s.writer_up),
        )?;
        family(
            &mut e,
            "shmring_writer_state",
            "1 for the writer's state: live, eos, closed, replaced or dead",
            Gauge,
            rings.iter().map(|s| {
                (
                    vec![("ring", s.ring.clone()), ("state", s.state.to_owned())],
                    ConstGauge::new(1i64),
                )
            }),
        )?;
        family(
            &mut e,
            "shmring_readers",
            "Readers with the ring open",
            Gauge,
            gauge(|s| s.readers),
        )?;
        family(
            &mut e,
            "shmring_readers_without_entry",
            "Readers not in the reader table (no write access, or zero-copy off)",
            Gauge,
            gauge(|s| s.readers_without_entry),
        )?;
        let per_reader = |f: fn(&ReaderSample) -> u64| {
            rings
                .iter()
                .flat_map(|s| {
                    s.per_reader.iter().map(move |r| {
                        (
                            vec![("ring", s.ring.clone()), ("pid", r.pid.clone())],
                            ConstCounter::new(f(r)),
                        )
                    })
                })
                .collect::<Vec<_>>()
        };
        let per_reader_gauge = |f: fn(&ReaderSample) -> i64| {
            rings
                .iter()
                .flat_map(|s| {
                    s.per_reader.iter().map(move |r| {
                        (
                            vec![("ring", s.ring.clone()), ("pid", r.pid.clone())],
                            ConstGauge::new(f(r)),
                        )
                    })
                })
                .collect::<Vec<_>>()
        };
        family(
            &mut e,
            "shmring_reader_frames_received",
            "Frames the reader returned",
            Counter,
            per_reader(|r| r.received),
        )?;
        family(
            &mut e,
            "shmring_reader_frames_missed",
            "Frames the reader skipped (latest) or lost to the writer lapping it (sequential)",
            Counter,
            per_reader(|r| r.missed),
        )?;
        family(
            &mut e,
            "shmring_reader_torn_copies",
            "Copies overwritten while being made, thrown away and retried",
            Counter,
            per_reader(|r| r.torn),
        )?;
        family(
            &mut e,
            "shmring_reader_leases",
            "Slots the reader holds in place now",
            Gauge,
            per_reader_gauge(|r| r.leases),
        )?;
        family(
            &mut e,
            "shmring_reader_frames_behind",
            "Frames between the ring's newest and the reader's last",
            Gauge,
            per_reader_gauge(|r| r.behind),
        )?;
        Ok(())
    }
}

/// Serves `/metrics` on `listen` until killed.
pub(crate) fn serve(dir: &Path, listen: &str) -> Result<()> {
    let server =
        tiny_http::Server::http(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Arc::new(RingCollector {
        dir: dir.to_owned(),
        epochs: Mutex::default(),
    })));
    eprintln!(
        "shmring metrics: rings of {} at http://{listen}/metrics",
        dir.display()
    );
    let content_type: tiny_http::Header =
        "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"
            .parse()
            .expect("a valid header");
    for request in server.incoming_requests() {
        let response = if request.url() == "/metrics" {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &registry) {
                Ok(()) => tiny_http::Response::from_string(body).with_header(content_type.clone()),
                Err(e) => tiny_http::Response::from_string(format!("encoding failed: {e}"))
                    .with_status_code(500),
            }
        } else {
            tiny_http::Response::from_string("shmring metrics: see /metrics\n")
                .with_status_code(404)
        };
        let _ = request.respond(response);
    }
    Ok(())
}
