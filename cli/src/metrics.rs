//! `shmring metrics`: every ring and reader of a directory as Prometheus metrics, read
//! from the rings at each scrape, served over HTTP with bounds on what any client can
//! make the exporter hold or wait for (see "Serving" below).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use shmring_common::WriterStatus;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::rings::{open, rates, reader_total, ring_names, state_name, Result};

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
    /// A ring of encoded units: what it holds now.
    units: Option<shmring_common::UnitStats>,
}

struct ReaderSample {
    pid: String,
    /// Which of its process's readers of this ring it is: 0 for the first in the
    /// reader table, 1 for the next... Two readers of one ring in one process (two
    /// shmringsrc in a pipeline) would otherwise be two series with the same labels,
    /// which Prometheus rejects. Counted within the pid, so a process's readers keep
    /// their label while readers of other processes come and go.
    reader: String,
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
        // Rings that came and went: forgotten, so that the map never outgrows the
        // directory.
        epochs.retain(|name, _| names.contains(name));
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
            // Read apart from `listed`: a reader may come or go between the two, so
            // the total is at least the entries listed and the difference never
            // wraps.
            let total = reader_total(&r).max(listed.len());
            let mut per_pid: HashMap<u32, u32> = HashMap::new();
            out.push(RingSample {
                units: r.unit_stats().ok().flatten(),
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
                readers: total as i64,
                readers_without_entry: total.saturating_sub(listed.len()) as i64,
                per_reader: listed
                    .iter()
                    .map(|p| ReaderSample {
                        pid: p.pid.to_string(),
                        reader: {
                            let n = per_pid.entry(p.pid).or_insert(0);
                            *n += 1;
                            (*n - 1).to_string()
                        },
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

/// The labels of one reader's series: its ring, its pid, and which of that pid's
/// readers it is.
fn reader_labels(s: &RingSample, r: &ReaderSample) -> Vec<(&'static str, String)> {
    vec![
        ("ring", s.ring.clone()),
        ("pid", r.pid.clone()),
        ("reader", r.reader.clone()),
    ]
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
        let units = |f: fn(&shmring_common::UnitStats) -> f64| {
            rings
                .iter()
                .filter_map(move |s| Some((ring(s), ConstGauge::new(f(s.units.as_ref()?)))))
                .collect::<Vec<_>>()
        };
        family(
            &mut e,
            "shmring_bitrate_bits_per_second",
            "Rings of encoded video: bits a second over the newest units",
            Gauge,
            units(|u| u.bitrate),
        )?;
        family(
            &mut e,
            "shmring_gop_units",
            "Rings of encoded video: units from the keyframe before the newest to the newest (NaN: fewer than two held)",
            Gauge,
            units(|u| u.gop.map_or(f64::NAN, |g| g as f64)),
        )?;
        family(
            &mut e,
            "shmring_history_seconds",
            "Rings of encoded video: capture time from the oldest unit held to the newest",
            Gauge,
            units(|u| u.history_ns as f64 / 1e9),
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
                    s.per_reader
                        .iter()
                        .map(move |r| (reader_labels(s, r), ConstCounter::new(f(r))))
                })
                .collect::<Vec<_>>()
        };
        let per_reader_gauge = |f: fn(&ReaderSample) -> i64| {
            rings
                .iter()
                .flat_map(|s| {
                    s.per_reader
                        .iter()
                        .map(move |r| (reader_labels(s, r), ConstGauge::new(f(r))))
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

// Serving. Anyone who can reach the port can talk to the exporter, so no client may
// take it down, hold it up or make it grow:
//
// - The request head is read by hyper with a bound on its size (`MAX_HEAD`: an endless
//   header line or a flood of headers gets a 431 and a closed connection) and on the
//   time it takes (`HEAD_TIMEOUT`). hyper starts that clock whenever it waits for a
//   head: on a new connection and again on a keep-alive connection after each answer,
//   so a connection that says nothing is closed within `HEAD_TIMEOUT` too.
// - The body is never read (only GET and HEAD are answered), so a body announced and
//   never sent, or endless, costs nothing: hyper closes such a connection after the
//   answer instead of reading on. (A Content-Length near 2^64 hyper refuses outright,
//   with a 431.)
// - Each connection is a task of its own: one slow or silent client holds up no one.
//   A connection lives at most `CONNECTION_LIFETIME`, then is closed once its current
//   answer is written, or after `SHUTDOWN_GRACE` at the latest: a client that sends
//   requests and never reads the answers (hyper then stops reading its requests, its
//   buffers stay within `MAX_HEAD` and an answer) is dropped.
// - At most `MAX_CONNECTIONS` are open. A new connection beyond that closes the oldest
//   rather than being refused or left waiting: a client holding hundreds of idle
//   sockets would otherwise keep Prometheus out until its sockets time out, whereas a
//   scrape is answered within milliseconds of being accepted, long before hundreds of
//   newer connections push it out. The bound keeps the exporter's file descriptors
//   (and buffers) well under the usual limit of 1024 open files.
// - Scrapes are encoded on the one runtime thread, so a flood of scrapes queues up
//   rather than taking more threads; reading the rings takes well under a millisecond
//   a ring.

/// Largest request head (request line and headers) read.
const MAX_HEAD: usize = 16 * 1024;
/// Time a client has to send a whole request head, from the connection's start or from
/// the end of the previous answer.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time after which a connection is asked to close (once its current answer is out).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(20);
/// Time a connection asked to close has to finish before it is dropped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Connections open at once; a new one beyond this closes the oldest.
const MAX_CONNECTIONS: usize = 256;
/// How long a scrape is reused: however many clients ask, the rings (and the kernel's
/// lock table, which counts their readers) are read at most four times a second.
const SCRAPE_REUSE: Duration = Duration::from_millis(250);

/// The registry, and its last scrape with the time it was made.
struct Scrapes {
    registry: Registry,
    last: Mutex<Option<(Instant, Bytes)>>,
}

impl Scrapes {
    /// The exposition text: the last scrape when it is recent, else a new one. The
    /// runtime has one thread, so two scrapes are never made at once; the lock is not
    /// held while the rings are read.
    fn text(&self) -> std::result::Result<Bytes, std::fmt::Error> {
        if let Some((at, text)) = lock(&self.last).as_ref() {
            if at.elapsed() < SCRAPE_REUSE {
                return Ok(text.clone());
            }
        }
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &self.registry)?;
        let text = Bytes::from(body);
        *lock(&self.last) = Some((Instant::now(), text.clone()));
        Ok(text)
    }
}

/// The open connections, oldest first, to close the oldest when there are too many.
#[derive(Default)]
struct Connections {
    next: u64,
    open: BTreeMap<u64, AbortHandle>,
}

/// Takes a connection off the list when its task ends, however it ends.
struct Listed {
    id: u64,
    connections: Arc<Mutex<Connections>>,
}

impl Drop for Listed {
    fn drop(&mut self) {
        lock(&self.connections).open.remove(&self.id);
    }
}

fn lock<T>(c: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves `/metrics` on `listen` until killed.
pub(crate) fn serve(dir: &Path, listen: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the metrics server: {e}"))?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(RingCollector {
        dir: dir.to_owned(),
        epochs: Mutex::default(),
    }));
    runtime.block_on(async {
        // tokio's bind keeps a backlog of 1024 where std's keeps 128: connections
        // arriving in a burst wait to be accepted instead of being dropped and retried
        // a second later.
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        // The address bound, not the one asked for: `--listen 127.0.0.1:0` takes a port
        // the kernel picks, and this line is how a caller learns which.
        let bound = listener
            .local_addr()
            .map_or_else(|_| listen.to_owned(), |a| a.to_string());
        eprintln!(
            "shmring metrics: rings of {} at http://{bound}/metrics",
            dir.display()
        );
        let scrapes = Scrapes {
            registry,
            last: Mutex::default(),
        };
        accept_loop(listener, Arc::new(scrapes)).await;
        Ok(())
    })
}

async fn accept_loop(listener: TcpListener, registry: Arc<Scrapes>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_header_size(MAX_HEAD);
    let connections = Arc::new(Mutex::new(Connections::default()));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted
                        | ErrorKind::ConnectionReset
                        | ErrorKind::Interrupted
                ) =>
            {
                continue; // that client gave up: nothing to do
            }
            Err(_) => {
                // Out of file descriptors (or memory): free one, and do not spin on a
                // connection that cannot be taken yet.
                if let Some((_, oldest)) = lock(&connections).open.pop_first() {
                    oldest.abort();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let listed = {
            let mut c = lock(&connections);
            while c.open.len() >= MAX_CONNECTIONS {
                if let Some((_, oldest)) = c.open.pop_first() {
                    oldest.abort(); // dropping its task closes its socket
                }
            }
            c.next += 1;
            Listed {
                id: c.next,
                connections: connections.clone(),
            }
        };
        let id = listed.id;
        let task = tokio::spawn(connection(stream, http.clone(), registry.clone(), listed));
        // The runtime has one thread and this task has not yielded since the spawn, so
        // the connection's task has not run yet and cannot have taken itself off.
        lock(&connections).open.insert(id, task.abort_handle());
    }
}

/// Serves one connection, for `CONNECTION_LIFETIME` at most.
async fn connection(
    stream: TcpStream,
    http: http1::Builder,
    registry: Arc<Scrapes>,
    _listed: Listed,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request: Request<Incoming>| {
        let response = respond(&registry, &request);
        // `request` and its unread body are dropped here.
        async move { Ok::<_, Infallible>(response) }
    });
    let mut conn = pin!(http.serve_connection(TokioIo::new(stream), service));
    // Errors are the clients' (timeouts, malformed or oversized requests, resets):
    // nothing for the exporter's log.
    if tokio::time::timeout(CONNECTION_LIFETIME, conn.as_mut())
        .await
        .is_err()
    {
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
    }
}

/// The answer to one request: the metrics for GET (or HEAD) /metrics.
fn respond(scrapes: &Scrapes, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    if request.uri().path() != "/metrics" {
        return text(StatusCode::NOT_FOUND, "shmring metrics: see /metrics\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "shmring metrics: GET /metrics\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match scrapes.text() {
        Ok(body) => {
            let mut r = Response::new(Full::new(body));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmring_common::testing::TestDir;
    use shmring_common::{FrameMeta, RingReader, RingWriter, WriterConfig};

    /// Two readers of one ring in one process (two shmringsrc in one pipeline) are two
    /// series, not one series twice, which Prometheus would reject.
    #[test]
    fn two_readers_of_one_process_are_two_series() {
        let dir = TestDir::new("metrics-two-readers");
        let loc = dir.ring("cam");
        let mut writer = RingWriter::create(&loc, &WriterConfig::default()).unwrap();
        writer.write(&FrameMeta::default(), &[7; 64]).unwrap();
        let mut readers = [
            RingReader::open(&loc).unwrap(),
            RingReader::open(&loc).unwrap(),
        ];
        for r in &mut readers {
            assert!(r.enable_zero_copy().unwrap(), "no reader-table entry");
        }
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RingCollector {
            dir: dir.path.clone(),
            epochs: Mutex::default(),
        }));
        let mut scrape = String::new();
        prometheus_client::encoding::text::encode(&mut scrape, &registry).unwrap();
        let series: Vec<&str> = scrape
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series))
            .collect();
        let mut unique = series.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), series.len(), "a series twice in:\n{scrape}");
        let pid = std::process::id();
        for n in 0..2 {
            let line = format!(
                "shmring_reader_frames_received_total{{ring=\"cam\",pid=\"{pid}\",reader=\"{n}\"}}"
            );
            assert!(series.contains(&line.as_str()), "no {line} in:\n{scrape}");
        }
        assert!(scrape.contains("shmring_readers_without_entry{ring=\"cam\"} 0"));
    }
}
