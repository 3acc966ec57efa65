//! End to end: the three-camera graph of examples/pipelines (embedded RTSP server, three
//! camera producers, three processing stages, the mosaic) for about ten seconds.

use std::process::Command;

use shmring_common::testing::TestDir;

#[test]
fn three_camera_graph_delivers_all_six_streams_and_stops_cleanly() {
    let exe = std::env::current_exe().unwrap();
    let plugin_dir = exe.parent().unwrap().parent().unwrap().to_owned();
    assert!(
        plugin_dir.join("libgstshmring.so").exists(),
        "no libgstshmring.so in {}: run `cargo build` before `cargo test` (scripts/test.sh does)",
        plugin_dir.display()
    );
    let root = env!("CARGO_MANIFEST_DIR");
    let rings = TestDir::new("demo");
    let out = rings.path.join("out");
    let port = 20000 + std::process::id() % 20000;
    let status = Command::new(format!("{root}/examples/pipelines/three-cameras.sh"))
        .arg("10")
        .env("GST_PLUGIN_PATH", &plugin_dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                plugin_dir.display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("SHMRING_DIR", &rings.path)
        .env("OUT_DIR", &out)
        .env("RTSP_PORT", port.to_string())
        .env_remove("DISPLAY")
        .status()
        .expect("three-cameras.sh runs");
    assert!(
        status.success(),
        "the graph did not run and stop cleanly: {status}"
    );
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary.json written");
    let png = std::fs::read(out.join("mosaic.png")).expect("mosaic.png written");
    assert_eq!(&png[1..4], b"PNG");
    // A number of the summary's entry for `ring`.
    let field = |ring: &str, name: &str| -> f64 {
        let at = summary
            .find(&format!("\"{ring}\""))
            .unwrap_or_else(|| panic!("{ring} missing: {summary}"));
        let key = format!("\"{name}\": ");
        let from = summary[at..]
            .find(&key)
            .unwrap_or_else(|| panic!("{ring} has no {name}: {summary}"))
            + at
            + key.len();
        summary[from..]
            .split([',', '}'])
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{ring} {name} is not a number: {summary}"))
    };
    for ring in ["cam1", "cam2", "cam3", "proc1", "proc2", "proc3"] {
        let fps = field(ring, "fps");
        assert!(
            fps >= 27.0,
            "{ring} delivered {fps} fps, below 90 % of 30: {summary}"
        );
    }
    // The decoders and the scaling and edge stages write into the rings' pools; the
    // colour stage's source copies into its sink's pool, where videobalance works.
    for ring in ["cam1", "cam2", "cam3", "proc1", "proc2", "proc3"] {
        let in_place = field(ring, "written_in_place");
        assert!(
            in_place >= 0.9,
            "{ring}: only {in_place} of its frames written in place: {summary}"
        );
    }
    assert!(summary.contains("\"errors\": []"), "{summary}");
    // The aligned stage: cam1..3 side by side by capture time. The cameras are not
    // genlocked, so the frames of one instant are up to a frame period apart.
    let aligned = std::fs::read_to_string(out.join("aligned.json")).expect("aligned.json written");
    let number = |name: &str| -> f64 {
        let key = format!("\"{name}\": ");
        let from = aligned
            .find(&key)
            .unwrap_or_else(|| panic!("no {name}: {aligned}"))
            + key.len();
        aligned[from..]
            .split([',', '}'])
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    eprintln!("aligned stage: {aligned}");
    assert!(number("frames") >= 100.0, "{aligned}");
    let period_ms = 1000.0 / 30.0;
    assert!(
        number("skew_ms_p50") < period_ms,
        "tiles of one output frame more than a frame period apart: {aligned}"
    );
    assert!(number("skew_ms_p99") < 2.0 * period_ms, "{aligned}");
    assert!(aligned.contains("\"errors\": []"), "{aligned}");
    // Each camera's own H.264 went into an encoded ring beside the decoded one.
    for n in 1..=3 {
        let json = std::fs::read_to_string(out.join(format!("cam{n}-h264.json")))
            .expect("the encoded ring's stat written");
        assert!(json.contains("\"kind\": \"units\""), "{json}");
        assert!(json.contains("\"gop\": 30"), "key-int-max=30: {json}");
        assert!(json.contains("video/x-h264"), "{json}");
    }
}
