//! What the tests across processes share: gst-launch-1.0 processes with the plugin
//! built for this test binary and the test's ring directory, and a pipeline of this
//! process played to its end. Included with `#[path]` by the test files that use it.
#![allow(dead_code)] // each test file uses some of these

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use gst::prelude::*;
use shmring_common::testing::TestDir;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstshmring::plugin_register_static().unwrap();
    });
}

/// Where cargo left libgstshmring.so for this test binary (target/<profile>/).
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_owned();
    assert!(
        dir.join("libgstshmring.so").exists(),
        "no libgstshmring.so in {}: run `cargo build` before `cargo test` (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// A gst-launch-1.0 process; killed when dropped if still running.
pub struct Launch(pub Child);

impl Launch {
    pub fn start(dir: &TestDir, pipeline: &str) -> Self {
        let mut cmd = Command::new("gst-launch-1.0");
        cmd.arg("-q").args(pipeline.split_whitespace());
        Self::spawn(dir, cmd)
    }

    /// Any program, with the plugin and the test's ring directory in its environment.
    pub fn spawn(dir: &TestDir, mut cmd: Command) -> Self {
        let child = cmd
            .env("GST_PLUGIN_PATH", plugin_dir())
            // The `shmring` of this build first (examples call it).
            .env("PATH", {
                let path = std::env::var("PATH").unwrap_or_default();
                format!("{}:{path}", plugin_dir().display())
            })
            .env("SHMRING_DIR", &dir.path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gst-launch-1.0 runs");
        Launch(child)
    }

    /// Waits for the process to end within `limit`: its status and stderr.
    pub fn wait(&mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                self.0
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return (status, err);
            }
            assert!(
                Instant::now() < deadline,
                "gst-launch did not finish within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a clean exit within `limit`; fails with its stderr otherwise.
    pub fn finish(mut self, limit: Duration) {
        let (status, err) = self.wait(limit);
        assert!(status.success(), "gst-launch failed ({status}): {err}");
        assert!(
            !err.contains("CRITICAL") && !err.contains("WARNING"),
            "{err}"
        );
    }

    /// Waits for an exit on an error (not a signal) within `limit`: its stderr.
    pub fn fail(mut self, limit: Duration) -> String {
        use std::os::unix::process::ExitStatusExt;
        let (status, err) = self.wait(limit);
        assert_eq!(status.signal(), None, "killed by a signal: {err}");
        assert!(!status.success(), "expected an error: {err}");
        err
    }

    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Ends a gst-launch-1.0 -e process as Ctrl-C would: EOS first, a finished file after.
pub fn interrupt(launch: &Launch) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(launch.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

/// Plays `pipeline` to EOS (within 20 s); fails on an error.
pub fn play_to_eos(pipeline: &gst::Element) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the pipeline ends within 20 s");
    assert_eq!(msg.type_(), gst::MessageType::Eos, "{msg:?}");
}
