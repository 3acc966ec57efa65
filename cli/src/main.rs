//! `shmring`: see and manage the rings in shared memory without writing a pipeline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;
use shmring_common::{Handle, RingLocation, RingReader, WriterStatus};

mod metrics;
mod rings;
mod serve;

use rings::{open, rates, reader_total, ring_names, state_name, Result};

#[derive(Parser)]
#[command(
    name = "shmring",
    version,
    about = "See and manage shmring rings in shared memory"
)]
struct Cli {
    /// Ring directory (default /dev/shm/shmring-<uid>, or $SHMRING_DIR)
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every ring: writer pid and state, caps, slots, memory, frame rate, age of the last frame
    Ls,
    /// Everything in a ring's superblock and its latest descriptors
    Stat {
        ring: String,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// A live table of frame rates, latency from capture and counters, every second, until Ctrl-C
    Watch {
        /// Rings to watch (default: all)
        rings: Vec<String>,
        /// Stop after this many refreshes (default: never)
        #[arg(long)]
        count: Option<u32>,
        /// One JSON object a line every second, with what `stat --json` says of each ring
        #[arg(long)]
        json: bool,
    },
    /// Save the latest frame (or the one a handle names) as a PNG
    Grab {
        ring: String,
        #[arg(long)]
        handle: Option<String>,
        #[arg(short, long, default_value = "frame.png")]
        output: PathBuf,
    },
    /// Serve rings over RTSP (rtsp://HOST:PORT/RING): encoded rings as they are, decoded ones H.264 encoded while clients watch
    Serve {
        /// Rings to serve (default: every ring of the directory, those made later too)
        rings: Vec<String>,
        #[arg(long, default_value_t = 8554)]
        port: u16,
        /// Address to listen on (loopback unless given otherwise)
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// H.264 encoder: x264enc, openh264enc, vaapih264enc, nvh264enc or v4l2h264enc
        #[arg(long, default_value = "x264enc")]
        encoder: String,
        /// Bit rate in kbit/s
        #[arg(long, default_value_t = 2000)]
        bitrate: u32,
        /// Require this user (basic authentication); the password comes from
        /// --password-file or $SHMRING_SERVE_PASSWORD
        #[arg(long)]
        user: Option<String>,
        /// The password of --user, on the file's first line
        #[arg(long, requires = "user")]
        password_file: Option<PathBuf>,
        /// TLS certificate and key (PEM): rtsps:// only
        #[arg(long, requires = "key")]
        cert: Option<PathBuf>,
        #[arg(long, requires = "cert")]
        key: Option<PathBuf>,
    },
    /// Prometheus metrics of every ring and reader over HTTP, at /metrics
    Metrics {
        /// Address to listen on (loopback unless given otherwise)
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: String,
    },
    /// Remove rings whose writer is dead
    Gc {
        /// Only say what would be removed
        #[arg(long)]
        dry_run: bool,
        /// Only rings whose writer has been gone at least this long (30s, 10m, 2h)
        #[arg(long, value_parser = humantime::parse_duration)]
        older_than: Option<Duration>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli.dir.clone().unwrap_or_else(shmring_common::default_dir);
    let result = match cli.command {
        Cmd::Ls => ls(&dir),
        Cmd::Stat { ring, json } => stat(&dir, &ring, json),
        Cmd::Watch { rings, count, json } => watch(&dir, &rings, count, json),
        Cmd::Grab {
            ring,
            handle,
            output,
        } => grab(&dir, &ring, handle.as_deref(), &output),
        Cmd::Gc {
            dry_run,
            older_than,
        } => gc(&dir, dry_run, older_than.unwrap_or_default()),
        Cmd::Metrics { listen } => metrics::serve(&dir, &listen),
        Cmd::Serve {
            rings,
            port,
            bind,
            encoder,
            bitrate,
            user,
            password_file,
            cert,
            key,
        } => serve::serve(serve::Options {
            dir: dir.clone(),
            rings,
            port,
            bind,
            encoder,
            bitrate,
            user,
            password_file,
            tls: cert.zip(key),
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmring: {e}");
            ExitCode::FAILURE
        }
    }
}

fn short_caps(r: &RingReader) -> String {
    let caps = r
        .current_caps()
        .ok()
        .flatten()
        .map(|(_, c)| c)
        .unwrap_or_default();
    let field = |name: &str| {
        caps.split(", ").find_map(|f| {
            f.strip_prefix(&format!("{name}="))
                .map(|v| v.rsplit(')').next().unwrap_or(v).to_owned())
        })
    };
    let codec = caps
        .split(',')
        .next()
        .and_then(|name| name.strip_prefix("video/x-"));
    if let (Some(u), Some(codec)) = (r.unit_stats().ok().flatten(), codec) {
        return format!(
            "{} {:.1}Mb/s gop {}",
            codec.to_uppercase(),
            u.bitrate / 1e6,
            fmt_opt(u.gop, |g| g.to_string())
        );
    }
    match (field("format"), field("width"), field("height")) {
        (Some(f), Some(w), Some(h)) => format!("{f} {w}x{h}"),
        _ => caps.chars().take(40).collect(),
    }
}

fn fmt_opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

fn ls(dir: &Path) -> Result<()> {
    let names = ring_names(dir)?;
    if names.is_empty() {
        println!("no rings in {}", dir.display());
        return Ok(());
    }
    println!(
        "{:<20} {:>8} {:<8} {:<22} {:>5} {:>10} {:>8} {:>10} {:>7}",
        "RING", "PID", "STATE", "CAPS", "SLOTS", "MEMORY", "FPS", "LAST", "READERS"
    );
    for name in names {
        match open(dir, &name) {
            Ok(r) => {
                let rt = rates(&r);
                println!(
                    "{:<20} {:>8} {:<8} {:<22} {:>5} {:>9.1}M {:>8} {:>10} {:>7}",
                    name,
                    r.writer_pid(),
                    state_name(r.writer_status()),
                    short_caps(&r),
                    r.geometry().slot_count,
                    r.geometry().total_size as f64 / (1 << 20) as f64,
                    fmt_opt(rt.fps, |f| format!("{f:.1}")),
                    fmt_opt(rt.last_age, |d| format!("{:.1}s ago", d.as_secs_f64())),
                    reader_total(&r),
                );
            }
            Err(e) => println!("{name:<20} {:>8} {:<8} {e}", "-", "invalid"),
        }
    }
    Ok(())
}

fn stat(dir: &Path, ring: &str, as_json: bool) -> Result<()> {
    let r = open(dir, ring)?;
    let v = ring_json(&r, ring);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap());
        return Ok(());
    }
    for (k, val) in v.as_object().unwrap() {
        if k == "latest_frames" || k == "readers" {
            continue;
        }
        let text = match val {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("{k:<18} {text}");
    }
    println!("latest frames:");
    for f in v["latest_frames"].as_array().unwrap() {
        println!(
            "  seq {:<8} {:>9} bytes  slot {:<3} pts {:<14} captured {}  {}",
            f["seq"],
            f["len"],
            f["slot"],
            f["pts"],
            f["captured_at_ns"],
            f["handle"].as_str().unwrap_or("")
        );
    }
    print!("{}", readers_text(&r, ""));
    Ok(())
}

/// Everything `stat --json` says of a ring (and `watch --json` every second).
fn ring_json(r: &RingReader, ring: &str) -> serde_json::Value {
    use std::sync::atomic::Ordering::Relaxed;
    let sb = r.superblock();
    let g = r.geometry();
    let head = r.head();
    let frames: Vec<_> = (head.saturating_sub(3).max(1)..=head)
        .rev()
        .filter_map(|seq| r.peek(seq).ok().flatten())
        .map(|i| {
            json!({
                "seq": i.seq, "handle": Handle { ring: ring.into(), epoch: i.epoch, seq: i.seq }.to_string(),
                "len": i.len, "slot": i.payload_index, "caps_version": i.caps_version,
                "pts": i.pts, "dts": i.dts, "duration": i.duration,
                "captured_at_ns": i.captured_at_ns, "commit_mono_ns": i.commit_mono_ns, "flags": i.flags,
                "video": { "format": i.video.format, "width": i.video.width, "height": i.video.height,
                           "planes": i.video.n_planes,
                           "offsets": &i.video.offsets[..i.video.n_planes as usize],
                           "strides": &i.video.strides[..i.video.n_planes as usize] },
            })
        })
        .collect();
    let rt = rates(r);
    let units = r.unit_stats().ok().flatten();
    let v = json!({
        "ring": ring,
        "kind": if r.holds_units() { "units" } else { "frames" },
        "bitrate": units.map(|u| u.bitrate),
        "gop": units.and_then(|u| u.gop),
        "history_s": units.map(|u| u.history_ns as f64 / 1e9),
        "capture_age_ms": rt.capture_latency.map(|d| d.as_secs_f64() * 1e3),
        "path": r.location().path(),
        "layout": format!("{}.{}", sb.layout_major.load(Relaxed), sb.layout_minor.load(Relaxed)),
        "epoch": format!("{:016x}", r.epoch()),
        "writer_pid": r.writer_pid(),
        "writer_state": state_name(r.writer_status()),
        "heartbeat_age_ms": shmring_common::monotonic_ns().saturating_sub(sb.heartbeat_mono_ns.load(Relaxed)) as f64 / 1e6,
        "created_realtime_ns": sb.created_realtime_ns.load(Relaxed),
        "slots": g.slot_count,
        "payload_slots": g.payload_count,
        "lease_budget": r.lease_budget(),
        "slot_size": g.slot_stride,
        "payload_offset": g.payload_offset,
        "total_size": g.total_size,
        "head": head,
        "committed": sb.committed.load(Relaxed),
        "aborted": sb.aborted.load(Relaxed),
        "bytes_committed": sb.bytes_committed.load(Relaxed),
        "committed_in_place": sb.committed_in_place.load(Relaxed),
        "fps": rt.fps,
        "caps_version": r.current_caps().ok().flatten().map(|(v, _)| v),
        "caps": r.current_caps().ok().flatten().map(|(_, c)| c),
        "latest_frames": frames,
        "reader_count": reader_total(r),
        "readers": r.readers().iter().map(|p| json!({
            "pid": p.pid, "last_seq": p.last_seq, "behind": head.saturating_sub(p.last_seq),
            "received": p.received, "missed": p.missed, "torn": p.torn, "leases": p.leases,
        })).collect::<Vec<_>>(),
    });
    v
}

/// How many readers the ring has, and one line each for those that hold an entry of the
/// reader table. Readers without write access to the ring (group readers) and those
/// with zero-copy reads off have none: they are counted, not listed.
fn readers_text(r: &RingReader, indent: &str) -> String {
    let readers = r.readers();
    // Counted after the table was read: a reader may have left between the two.
    let unlisted = reader_total(r).saturating_sub(readers.len());
    let mut out = format!(
        "{indent}readers: {}, with an entry: {}\n",
        readers.len() + unlisted,
        readers.len()
    );
    for p in readers {
        out += &format!(
            "{indent}  pid {:<8} last seq {:<8} behind {:<4} received {:<8} missed {:<6} torn {:<4} leases {}\n",
            p.pid,
            p.last_seq,
            r.head().saturating_sub(p.last_seq),
            p.received,
            p.missed,
            p.torn,
            p.leases
        );
    }
    if unlisted > 0 {
        out += &format!(
            "{indent}  and {unlisted} without an entry (no write access, or zero-copy off)\n"
        );
    }
    out
}

fn watch(dir: &Path, only: &[String], count: Option<u32>, as_json: bool) -> Result<()> {
    let mut n = 0;
    loop {
        let names = if only.is_empty() {
            ring_names(dir)?
        } else {
            only.to_vec()
        };
        let out = if as_json {
            let rings: Vec<_> = names
                .iter()
                .map(|name| match open(dir, name) {
                    Ok(r) => ring_json(&r, name),
                    Err(e) => json!({ "ring": name, "error": e }),
                })
                .collect();
            format!(
                "{}\n",
                json!({ "time_ns": shmring_common::realtime_ns(), "rings": rings })
            )
        } else {
            watch_table(dir, &names)
        };
        print!("{out}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// One screen of `watch`: a line per ring and its readers.
fn watch_table(dir: &Path, names: &[String]) -> String {
    let mut out = String::from("\x1b[H\x1b[2J");
    out += &format!(
        "{:<20} {:<8} {:>8} {:>14} {:>10} {:>9} {:>10} {:>8}\n",
        "RING", "STATE", "FPS", "CAPTURE->NOW", "COMMITTED", "IN PLACE", "ABORTED", "HEAD"
    );
    for name in names {
        match open(dir, name) {
            Ok(r) => {
                use std::sync::atomic::Ordering::Relaxed;
                let rt = rates(&r);
                let sb = r.superblock();
                out += &format!(
                    "{:<20} {:<8} {:>8} {:>14} {:>10} {:>9} {:>10} {:>8}\n",
                    name,
                    state_name(r.writer_status()),
                    fmt_opt(rt.fps, |f| format!("{f:.1}")),
                    fmt_opt(rt.capture_latency, |d| format!(
                        "{:.1} ms",
                        d.as_secs_f64() * 1e3
                    )),
                    sb.committed.load(Relaxed),
                    sb.committed_in_place.load(Relaxed),
                    sb.aborted.load(Relaxed),
                    r.head()
                );
                out += &readers_text(&r, "  ");
            }
            Err(e) => out += &format!("{name:<20} {e}\n"),
        }
    }
    out
}

/// A frame's geometry checked against GStreamer's layout of its format (the format
/// table of `shmring_common::formats`) before any of it is handed to GStreamer: a frame
/// that does not hold what it claims is an error that says so. Frames of a format the
/// table does not know are left to GStreamer.
fn check_geometry(ring: &str, info: &shmring_common::FrameInfo) -> Result<()> {
    let v = &info.video;
    let Some(format) = shmring_common::formats::by_number(v.format) else {
        return Ok(());
    };
    match format.default_layout(v.width, v.height) {
        Some((_, size)) if size == info.len => Ok(()),
        Some((_, size)) => Err(format!(
            "frame {} of {ring} has {} bytes, a {}x{} {} frame needs {size}",
            info.seq, info.len, v.width, v.height, format.name
        )),
        None => Err(format!(
            "frame {} of {ring} claims to be {}x{} {}, which no frame can be",
            info.seq, v.width, v.height, format.name
        )),
    }
}

fn grab(dir: &Path, ring: &str, handle: Option<&str>, output: &Path) -> Result<()> {
    use gst::prelude::*;
    use shmring_common::{ByHandle, Next};

    let mut r = open(dir, ring)?;
    let alloc = |i: &shmring_common::FrameInfo| vec![0u8; i.len as usize];
    let frame = match handle {
        Some(text) => {
            let h: Handle = text
                .parse()
                .map_err(|e: shmring_common::Error| e.to_string())?;
            match r.by_handle(&h, alloc).map_err(|e| e.to_string())? {
                ByHandle::Frame(f) => f,
                ByHandle::Gone => {
                    return Err(format!(
                        "frame {text} is gone (overwritten, or of another writer epoch)"
                    ))
                }
                ByHandle::NotYet => return Err(format!("frame {text} is not written yet")),
            }
        }
        None => {
            r.seek_after(r.head().saturating_sub(1));
            match r
                .latest(Duration::from_secs(2), alloc)
                .map_err(|e| e.to_string())?
            {
                Next::Frame(f) => f,
                _ => return Err(format!("ring {ring} has no frame")),
            }
        }
    };
    let caps = r
        .caps(frame.info.caps_version)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "ring {ring} no longer has the caps of frame {}",
                frame.info.seq
            )
        })?;
    check_geometry(ring, &frame.info)?;
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    let pipeline = gst::parse::launch(
        "appsrc name=src ! videoconvert ! pngenc snapshot=true ! filesink name=out",
    )
    .map_err(|e| format!("GStreamer: {e} (are gstreamer1.0-plugins-base and -good installed?)"))?
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let caps: gst::Caps = caps
        .parse()
        .map_err(|_| format!("ring {ring} carries caps GStreamer cannot parse: {caps}"))?;
    src.set_caps(Some(&caps));
    src.set_format(gst::Format::Time);
    pipeline
        .by_name("out")
        .unwrap()
        .set_property("location", output.to_string_lossy().to_string());
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("GStreamer: {e}"))?;
    let mut buffer = gst::Buffer::from_mut_slice(frame.data);
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::ZERO);
    src.push_buffer(buffer)
        .map_err(|e| format!("GStreamer: {e}"))?;
    let _ = src.end_of_stream();
    let msg = pipeline.bus().unwrap().timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {
            println!(
                "frame {} of {ring} ({}) saved to {}",
                frame.info.seq,
                caps.structure(0).map(|s| s.to_string()).unwrap_or_default(),
                output.display()
            );
            Ok(())
        }
        Some(gst::MessageView::Error(e)) => {
            Err(format!("cannot write {}: {}", output.display(), e.error()))
        }
        _ => Err("timed out writing the PNG".into()),
    }
}

/// Removes the rings of dead writers and the temporary files of writers that died
/// making one. A name it cannot handle, or a removal that fails, is reported and the
/// rest is still done; the exit status then says that something was left.
fn gc(dir: &Path, dry_run: bool, older_than: Duration) -> Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut removed = 0;
    let mut failed = vec![];
    for name in ring_names(dir)? {
        let loc = match RingLocation::parse(&name, Some(dir)) {
            Ok(loc) => loc,
            Err(e) => {
                println!("{name}: left alone, not a ring name ({e})");
                continue;
            }
        };
        let dead = match RingReader::open_for_inspection(&loc) {
            Ok(r) => {
                // How long ago the writer last showed a sign of life (its heartbeat).
                let quiet = Duration::from_nanos(
                    shmring_common::monotonic_ns()
                        .saturating_sub(r.superblock().heartbeat_mono_ns.load(Relaxed)),
                );
                let gone = matches!(r.writer_status(), WriterStatus::Dead | WriterStatus::Closed);
                if gone && quiet < older_than {
                    println!(
                        "{name}: writer gone {:.0} s ago, less than --older-than; left alone",
                        quiet.as_secs_f64()
                    );
                }
                (gone && quiet >= older_than).then(|| r.writer_pid())
            }
            Err(e) => {
                println!("{name}: left alone, not a ring we can read ({e})");
                None
            }
        };
        let Some(pid) = dead else { continue };
        if dry_run {
            println!("would remove {name} (writer pid {pid} is gone)");
            removed += 1;
            continue;
        }
        match shmring_common::remove_if_dead(&loc) {
            Ok(Some(pid)) => {
                println!("removed {name} (writer pid {pid} is gone)");
                removed += 1;
            }
            Ok(None) => println!("{name}: a writer took it over meanwhile; left alone"),
            Err(e) => {
                println!("{name}: cannot remove: {e}");
                failed.push(name);
            }
        }
    }
    for tmp in shmring_common::abandoned_temp_files(dir) {
        let what = "left by a writer that died while creating it";
        if dry_run {
            println!("would remove {} ({what})", tmp.display());
        } else {
            match shmring_common::remove_abandoned_temp(&tmp) {
                Ok(true) => println!("removed {} ({what})", tmp.display()),
                Ok(false) => {
                    println!("{}: taken by a writer meanwhile; left alone", tmp.display());
                    continue;
                }
                Err(e) => {
                    println!("{}: cannot remove: {e}", tmp.display());
                    failed.push(tmp.display().to_string());
                    continue;
                }
            }
        }
        removed += 1;
    }
    if removed == 0 && failed.is_empty() {
        println!("nothing to remove in {}", dir.display());
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("could not remove {}", failed.join(", ")))
    }
}
