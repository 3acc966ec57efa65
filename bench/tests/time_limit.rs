//! A benchmark run stopped by a time limit keeps every scenario it finished: results.json
//! is written after each scenario, whole, not once at the end or after a group.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_run_killed_after_its_first_scenario_keeps_that_scenario() {
    let out = std::env::temp_dir().join(format!("shmring-bench-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // Two scenarios of the same group: the second takes seconds more than the first.
    let mut run = Command::new(env!("CARGO_BIN_EXE_shmring-bench"))
        .args([
            "--quick",
            "--seconds",
            "0.5",
            "--only",
            "latency1,transport1",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let results = out.join("results.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut first: Option<serde_json::Value> = None;
    while first.is_none() && Instant::now() < deadline {
        if let Ok(Some(status)) = run.try_wait() {
            panic!("the run ended ({status}) before the test could stop it");
        }
        first = std::fs::read_to_string(&results)
            .ok()
            .map(|text| serde_json::from_str(&text).expect("results.json is whole JSON"));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The time limit: the run is killed as soon as it has written anything.
    let pid = run.id();
    let _ = run.kill();
    let _ = run.wait();
    let _ = std::fs::remove_dir_all(&out);
    // Its roles go with it.
    let gone_by = Instant::now() + Duration::from_secs(1);
    while !roles_of(pid).is_empty() && Instant::now() < gone_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(roles_of(pid), Vec::<u32>::new(), "roles outlived their run");

    let first = first.expect("results.json within two minutes");
    let rows = |key: &str| first[key].as_array().map_or(0, Vec::len);
    assert_eq!(
        rows("latency_one"),
        2,
        "latency1's rows were written: {first}"
    );
    assert_eq!(
        rows("transport_one"),
        0,
        "written before transport1 ran: {first}"
    );
}

/// The processes a run of pid `run` started as roles, by their environment.
fn roles_of(run: u32) -> Vec<u32> {
    let mark = format!("SHMRING_BENCH_PARENT={run}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&mark))
        })
        .collect()
}
