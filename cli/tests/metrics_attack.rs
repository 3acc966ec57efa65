//! `shmring metrics` against hostile HTTP clients: while they do their worst, a
//! Prometheus scrape on a fresh connection is still answered within a second, the
//! exporter stays up and its memory stays bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod support;

use shmring_common::testing::TestDir;
use shmring_common::{FrameMeta, RingWriter, WriterConfig};
use support::Exporter;

/// What a scrape must answer within.
const SCRAPE_LIMIT: Duration = Duration::from_secs(1);
/// How much more memory than before the attack the exporter may ever have held.
const RSS_GROWTH_LIMIT_KIB: u64 = 32 * 1024;
/// Longest any attacker keeps going, whatever happens.
const ATTACK_LIMIT: Duration = Duration::from_secs(30);

/// A field of /proc/PID/status, in KiB.
fn status_kib(exporter: &Exporter, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", exporter.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// A scrape as Prometheus makes it, on a fresh connection: the time it took, or why it
/// failed.
fn scrape(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let mut s =
        TcpStream::connect_timeout(&addr, SCRAPE_LIMIT).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(SCRAPE_LIMIT)).unwrap();
    s.set_write_timeout(Some(SCRAPE_LIMIT)).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: application/openmetrics-text\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .map_err(|e| format!("read after {:?}: {e}", start.elapsed()))?;
    let took = start.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("not a 200: {answer:.200}"));
    }
    if !answer.contains("shmring_frames_committed_total{ring=\"cam\"}") {
        return Err(format!("no frames_committed for cam: {answer:.2000}"));
    }
    if took > SCRAPE_LIMIT {
        return Err(format!("answered after {took:?}"));
    }
    Ok(took)
}

/// Runs `attack` on a thread of its own; it keeps its sockets open until `stop`.
fn attacker(
    name: &'static str,
    stop: &Arc<AtomicBool>,
    attack: impl FnOnce(&dyn Fn() -> bool) -> String + Send + 'static,
) -> JoinHandle<String> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        let done = move || stop.load(Ordering::Relaxed) || start.elapsed() > ATTACK_LIMIT;
        format!("{name}: {}", attack(&done))
    })
}

/// Sleeps until `done`.
fn hold(done: &dyn Fn() -> bool) {
    while !done() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A connection for an attacker, with timeouts so that it never blocks for long.
fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    Ok(s)
}

/// Sends `head`, then reads whatever answer comes (for at most 2 s), and keeps the
/// connection open until `done`.
fn send_and_hold(addr: SocketAddr, head: &str, done: &dyn Fn() -> bool) -> String {
    let mut s = match connect(addr) {
        Ok(s) => s,
        Err(e) => return format!("connect: {e}"),
    };
    if let Err(e) = s.write_all(head.as_bytes()) {
        return format!("send: {e}");
    }
    let mut answer = [0u8; 64];
    let status = match s.read(&mut answer) {
        Ok(n) => String::from_utf8_lossy(&answer[..n])
            .lines()
            .next()
            .unwrap_or("closed")
            .to_owned(),
        Err(e) => format!("no answer ({e})"),
    };
    hold(done);
    status
}

/// Writes `first`, then `chunk` over and over, up to `total` bytes or until the server
/// stops reading (for 2 s) or closes.
fn flood(
    addr: SocketAddr,
    first: &[u8],
    chunk: &[u8],
    total: usize,
    done: &dyn Fn() -> bool,
) -> String {
    let mut s = match connect(addr) {
        Ok(s) => s,
        Err(e) => return format!("connect: {e}"),
    };
    let mut sent = 0;
    let mut end = "sent all".to_owned();
    let _ = s.write_all(first);
    while sent < total && !done() {
        match s.write_all(chunk) {
            Ok(()) => sent += chunk.len(),
            Err(e) => {
                end = e.to_string();
                break;
            }
        }
    }
    hold(done);
    format!("{sent} bytes, then {end}")
}

#[test]
fn hostile_clients_do_not_keep_a_scrape_out() {
    let dir = TestDir::new("metrics-attack");
    let mut writer = RingWriter::create(&dir.ring("cam"), &WriterConfig::default()).unwrap();
    writer.write(&FrameMeta::default(), &[1; 64]).unwrap();
    let mut exporter = Exporter::start(&dir);
    let addr = exporter.addr;
    let first = scrape(addr);
    assert!(first.is_ok(), "before any attack: {first:?}");
    let baseline_kib = status_kib(&exporter, "VmRSS");

    let stop = Arc::new(AtomicBool::new(false));
    let endless = vec![b'a'; 64 * 1024];
    let attackers = vec![
        attacker("Content-Length 2^64-1", &stop, move |done| {
            send_and_hold(
                addr,
                "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\nabc",
                done,
            )
        }),
        attacker("POST with Content-Length 2^64-1", &stop, move |done| {
            send_and_hold(
                addr,
                "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551615\r\n\r\nabc",
                done,
            )
        }),
        attacker("5000-byte body never sent", &stop, move |done| {
            send_and_hold(
                addr,
                "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
                done,
            )
        }),
        attacker("chunked body never ended", &stop, move |done| {
            send_and_hold(
                addr,
                "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\nab",
                done,
            )
        }),
        attacker("endless header line", &stop, {
            let endless = endless.clone();
            move |done| {
                flood(
                    addr,
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Endless: ",
                    &endless,
                    8 << 20,
                    done,
                )
            }
        }),
        attacker("endless request line", &stop, {
            let endless = endless.clone();
            move |done| flood(addr, b"GET /", &endless, 8 << 20, done)
        }),
        attacker("endless list of headers", &stop, move |done| {
            let headers = "X-Many: a\r\n".repeat(4096);
            flood(
                addr,
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
                headers.as_bytes(),
                8 << 20,
                done,
            )
        }),
        attacker("500 idle connections", &stop, move |done| {
            let mut held = Vec::new();
            let mut failed = 0;
            for _ in 0..500 {
                match connect(addr) {
                    Ok(s) => held.push(s),
                    Err(_) => failed += 1,
                }
            }
            hold(done);
            format!("{} opened, {failed} refused", held.len())
        }),
        attacker("20 heads sent a byte at a time", &stop, move |done| {
            let mut held: Vec<TcpStream> = (0..20).filter_map(|_| connect(addr).ok()).collect();
            let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let mut sent = 0;
            while !done() && !held.is_empty() {
                let byte = [head.get(sent).copied().unwrap_or(b'a')];
                held.retain_mut(|s| s.write_all(&byte).is_ok());
                sent += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            format!(
                "{sent} bytes each, {} connections still open at the end",
                held.len()
            )
        }),
        attacker(
            "50 pipelined GETs, answers never read",
            &stop,
            move |done| {
                let requests = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(50);
                flood(addr, b"", requests.as_bytes(), requests.len(), done)
            },
        ),
        attacker(
            "2000 pipelined GETs, answers never read",
            &stop,
            move |done| {
                let requests = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
                flood(addr, b"", requests.as_bytes(), requests.len(), done)
            },
        ),
    ];

    // The attack under way; then a scrape every second or so, on through the time
    // the silent connections take to time out.
    std::thread::sleep(Duration::from_millis(300));
    let mut scrapes = Vec::new();
    for _ in 0..7 {
        scrapes.push(scrape(addr));
        std::thread::sleep(Duration::from_millis(1000));
    }
    stop.store(true, Ordering::Relaxed);
    let reports: Vec<String> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    scrapes.push(scrape(addr));

    let alive = exporter.alive();
    let (rss_kib, peak_kib) = if alive {
        (
            status_kib(&exporter, "VmRSS"),
            status_kib(&exporter, "VmHWM"),
        )
    } else {
        (0, 0)
    };
    let stderr = exporter.log();
    let summary = format!(
        "exporter alive: {alive}; RSS {baseline_kib} KiB before, {rss_kib} KiB after, \
         {peak_kib} KiB at the most\nscrapes: {scrapes:?}\nattackers:\n  {}\nexporter's stderr:\n{stderr}",
        reports.join("\n  ")
    );
    eprintln!("{summary}");
    assert!(alive, "the exporter died\n{summary}");
    assert!(
        scrapes.iter().all(Result::is_ok),
        "a scrape failed\n{summary}"
    );
    assert!(
        peak_kib < baseline_kib + RSS_GROWTH_LIMIT_KIB,
        "the exporter's memory grew too much\n{summary}"
    );
    assert!(!stderr.contains("panicked"), "{summary}");
}
