//! `VideoSpec`: the ring a binding's writer asks for (Python, Node, C), checked once.
//!
//! A binding's writer is given plain numbers: width, height, a format name, a frame
//! rate, slot counts. Every one is untrusted input. This turns them into the ring's
//! `WriterConfig` (caps included, so `shmringsrc` reads the ring with nothing typed)
//! and the layout of its frames, or into a message naming what was wrong. Times given
//! with a frame are checked by `time_ns`.

use crate::formats::{self, Format, FORMATS};
use crate::layout::{MAX_SLOTS, MAX_SPARES, MIN_SLOTS};
use crate::{FrameMeta, VideoLayout, WriterConfig};

/// The largest width or height a binding's writer takes.
pub const MAX_SIDE: i64 = 16384;

/// What a binding's writer is asked for, as the caller gave it.
#[derive(Clone, Debug)]
pub struct VideoArgs<'a> {
    pub width: i64,
    pub height: i64,
    /// A GStreamer format name (`formats::FORMATS`).
    pub format: &'a str,
    /// Frames per second, more than 0, at most 1000.
    pub fps: f64,
    /// Ring slots; 0 keeps half a second (4 to 64 slots within 1 GiB).
    pub slots: i64,
    /// Spare slots readers may lease (0 to 64, with `pool_slots`).
    pub lease_slots: i64,
    /// Slots the writer lends itself to fill in place.
    pub pool_slots: i64,
}

/// A checked ring of raw video for a binding's writer.
#[derive(Clone, Debug)]
pub struct VideoSpec {
    pub format: &'static Format,
    pub width: u32,
    pub height: u32,
    /// The frame rate as GStreamer's caps give it.
    pub fps: (u64, u64),
    pub layout: VideoLayout,
    /// Bytes of a frame.
    pub size: usize,
    pub duration_ns: u64,
    pub config: WriterConfig,
}

/// A count within `range`, or a message naming `what`.
fn count(what: &str, n: i64, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| format!("{what} {n}: expected {} to {}", range.start(), range.end()))
}

/// The fraction GStreamer's caps give `fps`: exact for whole and NTSC rates (29.97 is
/// 30000/1001), else in thousandths.
pub fn framerate(fps: f64) -> Result<(u64, u64), String> {
    if !(fps.is_finite() && fps > 0.0 && fps <= 1000.0) {
        return Err(format!("fps {fps}: expected more than 0, at most 1000"));
    }
    let near = |x: f64| (x - x.round()).abs() < 1e-3;
    let (n, d) = if near(fps) {
        (fps.round() as u64, 1)
    } else if near(fps * 1.001) {
        ((fps * 1.001).round() as u64 * 1000, 1001)
    } else {
        ((fps * 1000.0).round() as u64, 1000)
    };
    if n == 0 {
        return Err(format!("fps {fps}: too low, at least 0.001"));
    }
    Ok((n, d))
}

/// A time given with a frame, in ns: 0 to 2**63 - 1, what a GStreamer clock time holds
/// (the ring keeps 2**64 - 1 for "no pts", and shmringsrc drops a frame captured
/// beyond 2**63 - 1).
pub fn time_ns(what: &str, t: i128) -> Result<u64, String> {
    u64::try_from(t)
        .ok()
        .filter(|&t| t <= i64::MAX as u64)
        .ok_or_else(|| format!("{what} {t}: expected ns, 0 to 2**63 - 1"))
}

impl VideoSpec {
    pub fn new(a: &VideoArgs<'_>) -> Result<Self, String> {
        let format = formats::by_name(a.format).ok_or_else(|| {
            let names: Vec<_> = FORMATS.iter().map(|f| f.name).collect();
            format!(
                "format {:?}: expected one of {}",
                a.format,
                names.join(", ")
            )
        })?;
        if !(1..=MAX_SIDE).contains(&a.width) || !(1..=MAX_SIDE).contains(&a.height) {
            return Err(format!(
                "{}x{}: width and height must be 1 to {MAX_SIDE}",
                a.width, a.height
            ));
        }
        let (width, height) = (a.width as u32, a.height as u32);
        let (n, d) = framerate(a.fps)?;
        let slots = match a.slots {
            0 => None,
            s => Some(count("slots", s, MIN_SLOTS..=MAX_SLOTS)?),
        };
        let lease_slots = count("lease_slots", a.lease_slots, 0..=MAX_SPARES)?;
        let pool_slots = count("pool_slots", a.pool_slots, 0..=MAX_SPARES)?;
        if lease_slots + pool_slots > MAX_SPARES {
            return Err(format!(
                "lease_slots {lease_slots} and pool_slots {pool_slots}: together at most {MAX_SPARES}"
            ));
        }
        let name = format.name;
        let (layout, size) = format
            .default_layout(width, height)
            .and_then(|(layout, size)| Some((layout, usize::try_from(size).ok()?)))
            .ok_or_else(|| format!("{width}x{height} {name}: too large"))?;
        let slots = slots.unwrap_or_else(|| {
            // Half a second, as shmringsink keeps: 4 to 64 slots within 1 GiB.
            let by_time = (n * 500).div_ceil(d * 1000).clamp(4, 64);
            by_time.min((1u64 << 30) / size as u64).max(2) as u32
        });
        let caps = format!(
            "video/x-raw, format=(string){name}, width=(int){width}, height=(int){height}, \
             framerate=(fraction){n}/{d}, pixel-aspect-ratio=(fraction)1/1, \
             interlace-mode=(string)progressive"
        );
        Ok(VideoSpec {
            format,
            width,
            height,
            fps: (n, d),
            layout,
            size,
            duration_ns: 1_000_000_000 * d / n,
            config: WriterConfig {
                slots,
                max_frame: size as u64,
                caps: Some(caps),
                spares: lease_slots,
                loans: pool_slots,
                ..Default::default()
            },
        })
    }

    /// What the writer says of a frame of this ring.
    pub fn meta(&self, pts: Option<u64>, captured_at_ns: Option<u64>) -> FrameMeta {
        FrameMeta {
            pts,
            duration: Some(self.duration_ns),
            captured_at_ns,
            video: self.layout,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(format: &str) -> VideoArgs<'_> {
        VideoArgs {
            width: 64,
            height: 48,
            format,
            fps: 30.0,
            slots: 0,
            lease_slots: 8,
            pool_slots: 2,
        }
    }

    #[test]
    fn a_spec_says_caps_size_and_slots() {
        let s = VideoSpec::new(&args("I420")).unwrap();
        assert_eq!(s.size, 64 * 48 * 3 / 2);
        assert_eq!(s.config.slots, 15);
        assert_eq!(s.duration_ns, 33_333_333);
        assert!(s
            .config
            .caps
            .as_deref()
            .unwrap()
            .contains("format=(string)I420"));
    }

    #[test]
    fn bad_arguments_are_named() {
        let bad = |f: fn(&mut VideoArgs<'_>), word: &str| {
            let mut a = args("BGRx");
            f(&mut a);
            let e = VideoSpec::new(&a).unwrap_err();
            assert!(e.contains(word), "{e:?} should name {word}");
        };
        bad(|a| a.format = "BGRY", "format");
        bad(|a| a.width = 0, "width");
        bad(|a| a.height = 1 << 40, "height");
        bad(|a| a.fps = f64::NAN, "fps");
        bad(|a| a.fps = 0.0001, "fps");
        bad(|a| a.slots = 1, "slots");
        bad(|a| a.lease_slots = -1, "lease_slots");
        bad(|a| a.pool_slots = 65, "pool_slots");
        bad(|a| (a.lease_slots, a.pool_slots) = (40, 30), "together");
    }

    #[test]
    fn times_are_clock_times() {
        assert_eq!(time_ns("pts", 0), Ok(0));
        assert_eq!(time_ns("pts", i64::MAX as i128), Ok(i64::MAX as u64));
        assert!(time_ns("pts", -1).unwrap_err().starts_with("pts -1"));
        assert!(time_ns("pts", 1 << 63).is_err());
        assert_eq!(framerate(29.97), Ok((30000, 1001)));
        assert_eq!(framerate(12.5), Ok((12500, 1000)));
    }
}
