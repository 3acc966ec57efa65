//! A Rust application that embeds shmringsink and shmringsrc in its own pipelines and
//! passes frames by handle: it collects the handles the sink posts, then asks a reader
//! in `handle` mode for those frames in reverse order and checks each buffer is the
//! frame its handle named.
//!
//!   cargo run --example handles [RING]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "rust-handles".into());
    gst::init()?;
    gstshmring::plugin_register_static()?;

    // Writer: 20 frames into a ring large enough to keep them all, one handle each.
    let writer = gst::parse::launch(&format!(
        "videotestsrc num-buffers=20 ! video/x-raw,width=160,height=120 ! shmringsink ring={ring} post-handles=true slots=32"
    ))?;
    writer.set_state(gst::State::Playing)?;
    let mut handles = vec![];
    let bus = writer.bus().expect("pipeline bus");
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(10)) {
        match msg.view() {
            gst::MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "shmringsink-handle") {
                    handles.push((s.get::<u64>("seq")?, s.get::<String>("handle")?));
                }
            }
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => return Err(format!("writer: {}", e.error()).into()),
            _ => {}
        }
    }
    if handles.len() != 20 {
        return Err(format!("expected 20 handles, got {}", handles.len()).into());
    }

    // Reader: exactly the frames we name, newest first.
    let reader = gst::parse::launch(&format!(
        "shmringsrc name=src ring={ring} mode=handle ! fakesink name=out signal-handoffs=true sync=false"
    ))?
    .downcast::<gst::Bin>()
    .expect("a pipeline is a bin");
    let offsets = Arc::new(Mutex::new(vec![]));
    let o = offsets.clone();
    reader
        .by_name("out")
        .expect("fakesink")
        .connect("handoff", false, move |args| {
            let buffer = args[1].get::<gst::Buffer>().expect("handoff buffer");
            o.lock().unwrap().push(buffer.offset());
            None
        });
    reader.set_state(gst::State::Playing)?;
    let src = reader.by_name("src").expect("shmringsrc");
    for (_, handle) in handles.iter().rev() {
        if !src.emit_by_name::<bool>("request-frame", &[handle]) {
            return Err(format!("request-frame refused {handle}").into());
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while offsets.lock().unwrap().len() < handles.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    reader.set_state(gst::State::Null)?;
    writer.set_state(gst::State::Null)?;

    let got = offsets.lock().unwrap().clone();
    let expected: Vec<u64> = handles.iter().rev().map(|(seq, _)| *seq).collect();
    if got != expected {
        return Err(format!("asked for frames {expected:?}, got {got:?}").into());
    }
    println!(
        "handles: {} frames delivered by handle, in the order asked",
        got.len()
    );
    Ok(())
}
