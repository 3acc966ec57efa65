//! Role processes: starting writers and readers, naming their channels, cleaning up.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::args::LEASE_SLOTS;
use crate::roles::{Role, RoleKind, Transport, PARENT_ENV, ROLE_ENV};

/// A role process; killed when dropped.
pub struct Proc(Child);

impl Proc {
    pub fn start(role: &Role) -> Self {
        let child = Command::new(std::env::current_exe().unwrap())
            .env(ROLE_ENV, serde_json::to_string(role).unwrap())
            .env(PARENT_ENV, std::process::id().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("benchmark role starts");
        Proc(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The JSON report the role printed last, once it exits.
    pub fn report<T: serde::de::DeserializeOwned>(mut self) -> Option<T> {
        let mut out = String::new();
        self.0.stdout.take()?.read_to_string(&mut out).ok()?;
        let _ = self.0.wait();
        out.lines().rev().find_map(|l| serde_json::from_str(l).ok())
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        if self.0.wait().is_ok() {
            remove_shm_areas_of(self.0.id());
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A killed shmsink leaves its shared memory (/dev/shm/shmpipe.PID.N) behind.
fn remove_shm_areas_of(pid: u32) {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let mut parts = name.to_str().unwrap_or("").split('.');
        if parts.next() == Some("shmpipe") && parts.next().map(str::trim) == Some(&pid.to_string())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes what a scenario's channel left: the ring file once its writer is gone
/// (rings outlive their writers by design), or shmsink's socket file.
pub fn remove_channel(transport: Transport, channel: &str, dir: Option<&str>) {
    match transport {
        Transport::Shmring | Transport::Floor => {
            let dir = dir.map(std::path::Path::new);
            if let Ok(loc) = shmring_common::location::RingLocation::parse(channel, dir) {
                let _ = shmring_common::writer::remove_if_dead(&loc);
            }
        }
        Transport::Shm => {
            let _ = std::fs::remove_file(channel);
        }
    }
}

/// A scenario's channel: a ring name, or the path of shmsink's socket.
pub fn channel(transport: Transport, scenario: &str) -> String {
    match transport {
        Transport::Shmring => format!("bench-{scenario}-{}", std::process::id()),
        Transport::Floor => format!("bench-floor-{scenario}-{}", std::process::id()),
        Transport::Shm => format!("/tmp/shmring-bench-{scenario}-{}.sock", std::process::id()),
    }
}

/// A writer of `width`x`height` frames at `fps` (0: as fast as the transport takes
/// them) that runs `extra_seconds` beyond its readers' `reader_seconds`.
pub fn writer_role(
    transport: Transport,
    channel: &str,
    width: u32,
    height: u32,
    fps: u32,
    reader_seconds: f64,
    extra_seconds: f64,
) -> Role {
    let lease_slots = LEASE_SLOTS.load(std::sync::atomic::Ordering::Relaxed);
    // The writer's figures cover the middle of the readers' time, not the time before
    // they attach or after they leave, when shmsink has nobody to copy for.
    let margin = 0.3f64.min(reader_seconds / 4.0);
    Role {
        kind: RoleKind::Writer,
        transport,
        channel: channel.into(),
        width,
        height,
        fps,
        seconds: reader_seconds + extra_seconds,
        delay_ms: 0,
        slots: 0,
        lease_slots,
        in_place: false,
        dir: None,
        mode: None,
        peek: false,
        at_source: false,
        measure_from: READER_START.as_secs_f64() + margin,
        measure_for: reader_seconds - 2.0 * margin,
    }
}

/// A reader of `w`'s channel for `seconds`, spending `delay_ms` on each frame.
pub fn reader_role(w: &Role, seconds: f64, delay_ms: u64) -> Role {
    Role {
        kind: RoleKind::Reader,
        seconds,
        delay_ms,
        ..w.clone()
    }
}

/// Readers start after the writer (shmsrc needs its socket); they run `seconds`.
pub const READER_START: Duration = Duration::from_millis(700);
