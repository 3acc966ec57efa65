//! The floor under the transport rows (src/floor.rs), across real processes: a floor
//! writer and a floor reader, started as the benchmark starts its roles, hand frames on
//! and the reader times each one.

use std::process::{Command, Stdio};

fn role(kind: &str, dir: &std::path::Path, seconds: f64) -> String {
    format!(
        r#"{{"kind":"{kind}","transport":"floor","channel":"floor-test","width":1920,
        "height":1080,"fps":100,"seconds":{seconds},"delay_ms":0,"slots":0,
        "lease_slots":0,"dir":"{}","measure_from":0.2,"measure_for":0.5}}"#,
        dir.display()
    )
}

fn start(role: String) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_shmring-bench"))
        .env("SHMRING_BENCH_ROLE", role)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn report(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn a_floor_reader_times_every_frame_of_a_floor_writer() {
    let dir = std::env::temp_dir().join(format!("shmring-bench-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let writer = start(role("Writer", &dir, 2.5));
    let reader = report(start(role("Reader", &dir, 1.5)));
    let writer = report(writer);
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(reader["error"], serde_json::Value::Null, "{reader}");
    assert_eq!(reader["torn"], 0, "{reader}");
    // 100 fps for 1.5 s, less what the reader's start takes.
    let frames = reader["frames"].as_u64().unwrap();
    assert!((80..=160).contains(&frames), "{reader}");
    // Latest-wins at 100 fps: a reader that wakes for each frame misses few.
    assert!(reader["gaps"].as_u64().unwrap() < frames / 4, "{reader}");
    let p50 = reader["latency_ms_p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 50.0, "{reader}");
    assert_eq!(
        reader["latencies_ms"].as_array().unwrap().len() as u64,
        frames - 1
    );
    assert!(writer["frames"].as_u64().unwrap() > 20, "{writer}");
    assert!(writer["fps"].as_f64().unwrap() > 50.0, "{writer}");
}
