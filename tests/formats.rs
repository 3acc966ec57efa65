//! shmring-common's table of video formats against GStreamer's own: for every format it
//! lists, the name, GstVideoFormat number, planes, bytes per pixel and subsampling that
//! gstreamer-video's `VideoFormatInfo` gives, and for many sizes (odd ones among them)
//! the plane count, strides, offsets, size and plane extents of its `VideoInfo`.

use std::sync::Once;

use glib::translate::IntoGlib;
use shmring_common::formats::{Format, FORMATS};

fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| gst::init().unwrap());
}

/// Sizes looked at beyond the sweep of small ones: odd, even but not a multiple of 4 or
/// 8, and the common ones.
const SIZES: &[(u32, u32)] = &[
    (1, 1),
    (3, 3),
    (1, 1080),
    (1920, 1),
    (17, 9),
    (9, 17),
    (18, 10),
    (20, 12),
    (24, 16),
    (322, 242),
    (640, 480),
    (1366, 768),
    (1919, 1081),
    (1920, 1080),
    (3840, 2160),
    (16384, 16384),
];

fn gst_format(f: &Format) -> gst_video::VideoFormat {
    let g: gst_video::VideoFormat = f
        .name
        .parse()
        .unwrap_or_else(|e| panic!("{}: not a GStreamer format name: {e}", f.name));
    assert_eq!(
        g.into_glib() as u32,
        f.number,
        "{}: GstVideoFormat number",
        f.name
    );
    assert_eq!(g.to_str(), f.name, "{}: GStreamer's name", f.name);
    g
}

#[test]
fn every_format_is_described_as_gstreamer_describes_it() {
    init();
    assert!(!FORMATS.is_empty());
    for f in FORMATS {
        let info = gst_video::VideoFormatInfo::from_format(gst_format(f));
        let name = f.name;
        assert_eq!(info.n_planes() as usize, f.n_planes(), "{name}: planes");
        let mut planes_seen = vec![false; f.n_planes()];
        for c in 0..info.n_components() as usize {
            let p = info.plane()[c] as usize;
            let plane = f.planes[p];
            planes_seen[p] = true;
            let what = format!("{name}, component {c} (plane {p})");
            assert_eq!(
                info.pixel_stride()[c],
                plane.pixel_stride as i32,
                "{what}: bytes per pixel"
            );
            assert_eq!(
                info.w_sub()[c],
                plane.x_sub,
                "{what}: horizontal subsampling"
            );
            assert_eq!(info.h_sub()[c], plane.y_sub, "{what}: vertical subsampling");
            assert_eq!(info.depth()[c], f.depth, "{what}: bits per sample");
        }
        assert!(
            planes_seen.iter().all(|&s| s),
            "{name}: a plane without a component"
        );
    }
}

fn check_layout(f: &Format, format: gst_video::VideoFormat, width: u32, height: u32) {
    let what = format!("{} {width}x{height}", f.name);
    let info = gst_video::VideoInfo::builder(format, width, height)
        .build()
        .unwrap_or_else(|e| panic!("{what}: VideoInfo: {e}"));
    let (video, size) = f
        .default_layout(width, height)
        .unwrap_or_else(|| panic!("{what}: no layout"));
    let n = info.n_planes() as usize;
    assert_eq!(
        (video.format, video.width, video.height),
        (f.number, width, height),
        "{what}"
    );
    assert_eq!(video.n_planes as usize, n, "{what}: planes");
    assert_eq!(&video.strides[..n], info.stride(), "{what}: strides");
    let offsets: Vec<usize> = video.offsets[..n].iter().map(|&o| o as usize).collect();
    assert_eq!(offsets, info.offset(), "{what}: offsets");
    assert!(
        video.strides[n..].iter().all(|&s| s == 0) && video.offsets[n..].iter().all(|&o| o == 0),
        "{what}: planes beyond the last"
    );
    assert_eq!(size as usize, info.size(), "{what}: size");
    // The rows of each plane and the bytes of pixels in a row, as GStreamer gives them
    // for a component in the plane (all of a plane's are subsampled alike).
    let planes = info.format_info().plane().to_vec();
    for p in 0..n {
        let c = planes
            .iter()
            .position(|&q| q as usize == p)
            .unwrap_or_else(|| panic!("{what}: no component in plane {p}")) as u8;
        let rows = u64::from(info.comp_height(c));
        let row = u64::from(info.comp_width(c)) * info.comp_pstride(c) as u64;
        assert_eq!(
            f.plane_extent(p, width, height),
            (rows, row),
            "{what}: plane {p}, rows and bytes of a row"
        );
    }
}

#[test]
fn every_default_layout_is_gstreamers() {
    init();
    for f in FORMATS {
        let format = gst_format(f);
        for width in 1..=40 {
            for height in 1..=12 {
                check_layout(f, format, width, height);
            }
        }
        for &(width, height) in SIZES {
            check_layout(f, format, width, height);
        }
    }
}
