//! shmring-bench's command line: `--help` answers without running anything, and a
//! flag or value it does not know is an error (status 2), never a silent full run.

use std::process::Command;
use std::time::{Duration, Instant};

fn bench(args: &[&str]) -> (i32, String, Duration) {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shmring-bench"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text, t0.elapsed())
}

#[test]
fn help_answers_at_once_and_runs_nothing() {
    let (code, text, took) = bench(&["--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("--only") && text.contains("--seconds"),
        "{text}"
    );
    assert!(
        !text.contains("full run,") && !text.contains("quick run,"),
        "a run started: {text}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn unknown_flags_and_values_are_errors() {
    for args in [
        &["--frobnicate"][..],
        &["--only", "latency1,nope"],
        &["--seconds", "0.1"],
        &["--seconds", "soon"],
        &["--lease-slots", "-1"],
    ] {
        let (code, text, _) = bench(args);
        assert_eq!(code, 2, "{args:?}: {text}");
        assert!(text.contains("error"), "{args:?}: {text}");
    }
}
