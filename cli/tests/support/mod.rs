//! What the CLI tests share: a writer and readers as gst-launch-1.0 processes, the
//! `shmring` command, a `shmring serve` process and an RTSP client, and HTTP scrapes.
#![allow(dead_code)] // each test crate uses some of these

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shmring_common::testing::TestDir;

pub fn plugin_dir() -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_owned();
    assert!(
        dir.join("libgstshmring.so").exists(),
        "no libgstshmring.so in {}: run `cargo build` before `cargo test` (scripts/test.sh does)",
        dir.display()
    );
    dir
}

pub struct Writer(pub Child);

impl Writer {
    pub fn start(dir: &TestDir, ring: &str, caps: &str) -> Self {
        let child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(
                format!(
                    "videotestsrc is-live=true ! {caps},framerate=30/1 ! shmringsink ring={ring}"
                )
                .split_whitespace(),
            )
            .env("GST_PLUGIN_PATH", plugin_dir())
            .env("SHMRING_DIR", &dir.path)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let ring_path = dir.path.join(format!("{ring}.ring"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ring_path.exists() {
            assert!(Instant::now() < deadline, "writer never made {ring}");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500)); // a few frames
        Writer(child)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A gst-launch-1.0 reader of the ring "live", with `props` on its shmringsrc.
pub fn read_live(dir: &TestDir, props: &str) -> Child {
    Command::new("gst-launch-1.0")
        .args(["-q", "shmringsrc", "ring=live"])
        .args(props.split_whitespace())
        .args(["!", "fakesink"])
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("SHMRING_DIR", &dir.path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

pub fn shmring(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_shmring"))
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    out
}

pub fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn fails_with(o: &Output, text: &str) {
    assert!(
        !o.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(text), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

/// The value of metric `name` with labels that contain `labels`, in a scrape.
pub fn metric(scrape: &str, name: &str, labels: &str) -> Option<f64> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

/// GET `path` from `addr`: the status line and the body, or what went wrong.
pub fn http_get(addr: &str, path: &str) -> Result<(String, String), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    // One write: the request arrives whole.
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut all = String::new();
    s.read_to_string(&mut all)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = all
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no head in {all:?}"))?;
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

/// A `shmring serve` process on a port of its own.
pub struct Server(pub Child, pub u16, Arc<Mutex<String>>);

impl Server {
    pub fn start(dir: &TestDir, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shmring"))
            .args(["--dir", dir.path.to_str().unwrap(), "serve", "--port", "0"])
            .args(extra)
            .envs(env.iter().copied())
            .env("GST_PLUGIN_PATH", plugin_dir())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stderr, rx) = gather_stderr(&mut child, |line| {
            let (_, rest) = line.split_once("://127.0.0.1:")?;
            Some(rest.strip_suffix("/RING")?.to_owned())
        });
        let port = announced(&rx, &stderr, "shmring serve").parse().unwrap();
        Server(child, port, stderr)
    }

    /// What the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.2.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn url(&self, ring: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{ring}", self.1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An RTSP client in this process, decoding and counting frames.
pub struct Client {
    pipeline: gst::Element,
    frames: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Client {
    pub fn start(url: &str, credentials: &str) -> Self {
        use gst::prelude::*;
        gst::init().unwrap();
        let pipeline = gst::parse::launch(&format!(
            "rtspsrc location={url} latency=100 {credentials} ! rtph264depay ! avdec_h264 \
             ! fakesink name=out signal-handoffs=true sync=false"
        ))
        .unwrap();
        let frames = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let f = frames.clone();
        pipeline
            .downcast_ref::<gst::Bin>()
            .unwrap()
            .by_name("out")
            .unwrap()
            .connect("handoff", false, move |_| {
                f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                None
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        Client { pipeline, frames }
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until more than `n` frames came; the pipeline's error otherwise.
    pub fn more_than(&self, n: u64, limit: Duration) -> std::result::Result<(), String> {
        use gst::prelude::*;
        let deadline = Instant::now() + limit;
        let bus = self.pipeline.bus().unwrap();
        while self.frames() <= n {
            if let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
                if let gst::MessageView::Error(e) = m.view() {
                    return Err(format!("{} ({:?})", e.error(), e.debug()));
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{} frames after {limit:?}", self.frames()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        use gst::prelude::*;
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// A child process killed when the test ends, whether it passed or not.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child's stderr, gathered as it comes by a thread of its own, and the first line
/// that `wanted` picks out of it (how a server says which port it took).
fn gather_stderr(
    child: &mut Child,
    wanted: fn(&str) -> Option<String>,
) -> (Arc<Mutex<String>>, Receiver<String>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let pipe = BufReader::new(child.stderr.take().expect("stderr piped"));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in pipe.lines() {
            let Ok(line) = line else { break };
            if let Some(found) = wanted(&line) {
                let _ = tx.send(found);
            }
            let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    });
    (log, rx)
}

/// Waits for the first line `gather_stderr` picked out.
fn announced(rx: &Receiver<String>, log: &Mutex<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "{what} never said where it listens: {}",
                log.lock().unwrap_or_else(|e| e.into_inner())
            )
        })
}

/// A `shmring metrics` exporter of `dir` on a loopback port the kernel picks (the
/// exporter says which), killed when dropped, with what it wrote to stderr.
pub struct Exporter {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Exporter {
    pub fn start(dir: &TestDir) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shmring"))
            .args(["--dir", dir.path.to_str().unwrap()])
            .args(["metrics", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stderr, rx) = gather_stderr(&mut child, |line| {
            let (_, rest) = line.rsplit_once(" at http://")?;
            Some(rest.strip_suffix("/metrics")?.to_owned())
        });
        let addr = announced(&rx, &stderr, "shmring metrics").parse().unwrap();
        Exporter {
            child,
            addr,
            stderr,
        }
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the exporter wrote to stderr so far.
    pub fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
