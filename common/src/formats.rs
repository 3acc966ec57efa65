//! The raw video formats shmring names, and GStreamer's default plane layout of each, in pure Rust.
//!
//! Each [`Format`] is a GstVideoFormat number (a stable part of GStreamer's ABI), its
//! name, and how its bytes lie: one [`Plane`] after the other, each with its bytes per
//! pixel and its subsampling. [`Format::default_layout`] computes the offsets, strides
//! and size that `gst_video_info_set_format` gives a progressive frame of these formats:
//! each row rounded up to 4 bytes, the planes one after the other, and the rows of every
//! plane counted for a height rounded up to the format's vertical subsampling. That rule
//! holds for the formats of [`FORMATS`], not for every format GStreamer has:
//! `tests/formats.rs` checks each entry against gstreamer-video's `VideoInfo`.

use crate::VideoLayout;

/// One plane of a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plane {
    /// Bytes per pixel in this plane (in NV12's and NV21's chroma plane: per pair of
    /// interleaved U and V samples).
    pub pixel_stride: u32,
    /// Horizontal subsampling, as a shift: a row of a `w` wide frame has `w >> x_sub`
    /// pixels, rounded up.
    pub x_sub: u32,
    /// Vertical subsampling, as a shift: the plane of an `h` high frame has `h >> y_sub`
    /// rows, rounded up.
    pub y_sub: u32,
}

/// A raw video format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// GStreamer's name (`I420`, `BGRx`, ...).
    pub name: &'static str,
    /// GstVideoFormat number.
    pub number: u32,
    /// Bits of each sample (8, or 16 for GRAY16_LE).
    pub depth: u32,
    /// The planes, in the order of their offsets.
    pub planes: &'static [Plane],
}

const fn plane(pixel_stride: u32, x_sub: u32, y_sub: u32) -> Plane {
    Plane {
        pixel_stride,
        x_sub,
        y_sub,
    }
}

/// One plane of `n` bytes a pixel.
const PACKED: [&[Plane]; 5] = [
    &[],
    &[plane(1, 0, 0)],
    &[plane(2, 0, 0)],
    &[plane(3, 0, 0)],
    &[plane(4, 0, 0)],
];
/// Luma, then two chroma planes halved both ways (I420: U then V; YV12: V then U).
const PLANAR_420: &[Plane] = &[plane(1, 0, 0), plane(1, 1, 1), plane(1, 1, 1)];
/// Luma, then interleaved chroma halved both ways (NV12: UV; NV21: VU).
const SEMI_PLANAR_420: &[Plane] = &[plane(1, 0, 0), plane(2, 1, 1)];

const fn format(name: &'static str, number: u32, depth: u32, planes: &'static [Plane]) -> Format {
    Format {
        name,
        number,
        depth,
        planes,
    }
}

/// Every format shmring knows by name.
pub const FORMATS: &[Format] = &[
    format("I420", 2, 8, PLANAR_420),
    format("YV12", 3, 8, PLANAR_420),
    format("RGBx", 7, 8, PACKED[4]),
    format("BGRx", 8, 8, PACKED[4]),
    format("xRGB", 9, 8, PACKED[4]),
    format("xBGR", 10, 8, PACKED[4]),
    format("RGBA", 11, 8, PACKED[4]),
    format("BGRA", 12, 8, PACKED[4]),
    format("ARGB", 13, 8, PACKED[4]),
    format("ABGR", 14, 8, PACKED[4]),
    format("RGB", 15, 8, PACKED[3]),
    format("BGR", 16, 8, PACKED[3]),
    format("NV12", 23, 8, SEMI_PLANAR_420),
    format("NV21", 24, 8, SEMI_PLANAR_420),
    format("GRAY8", 25, 8, PACKED[1]),
    format("GRAY16_LE", 27, 16, PACKED[2]),
];

/// The format of GstVideoFormat number `number`, if it is one of [`FORMATS`].
pub fn by_number(number: u32) -> Option<&'static Format> {
    FORMATS.iter().find(|f| f.number == number)
}

/// The format named `name`, in any case, if it is one of [`FORMATS`].
pub fn by_name(name: &str) -> Option<&'static Format> {
    FORMATS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// `n` divided by `2 ** shift`, rounded up.
fn scale_up(n: u64, shift: u32) -> u64 {
    n.div_ceil(1 << shift)
}

impl Format {
    pub fn n_planes(&self) -> usize {
        self.planes.len()
    }

    /// The rows of plane `p` of a `width` x `height` frame, and the bytes of pixels in
    /// each (without the padding the stride may add).
    ///
    /// # Panics
    /// When the format has no plane `p`.
    pub fn plane_extent(&self, p: usize, width: u32, height: u32) -> (u64, u64) {
        let pl = self.planes[p];
        (
            scale_up(height.into(), pl.y_sub),
            scale_up(width.into(), pl.x_sub) * u64::from(pl.pixel_stride),
        )
    }

    /// Whether plane `p` of frame layout `v` (read from a ring: untrusted) lies within
    /// the frame's `len` bytes: a plane of this format, rows of at least its pixels'
    /// bytes, and its last row ending inside the frame. A C or Node program that walks
    /// the plane by offset and stride then never leaves the frame.
    pub fn plane_fits(&self, v: &VideoLayout, p: usize, len: u64) -> bool {
        if p >= self.n_planes() || v.n_planes as usize != self.n_planes() {
            return false;
        }
        let (rows, row_bytes) = self.plane_extent(p, v.width, v.height);
        let Ok(stride) = u64::try_from(v.strides[p]) else {
            return false;
        };
        if stride < row_bytes || rows == 0 {
            return false;
        }
        stride
            .checked_mul(rows - 1)
            .and_then(|b| b.checked_add(row_bytes))
            .and_then(|b| b.checked_add(v.offsets[p]))
            .is_some_and(|end| end <= len)
    }

    /// GStreamer's default layout of a progressive `width` x `height` frame: its
    /// planes' offsets and strides, and its size in bytes. None when a stride does not
    /// fit an `i32` (dimensions read from a hostile ring).
    pub fn default_layout(&self, width: u32, height: u32) -> Option<(VideoLayout, u64)> {
        let max_y_sub = self.planes.iter().map(|p| p.y_sub).max().unwrap_or(0);
        // The planes' rows as GStreamer counts them for the offsets and the size.
        let padded_height = u64::from(height).next_multiple_of(1 << max_y_sub);
        let mut layout = VideoLayout {
            format: self.number,
            width,
            height,
            n_planes: self.planes.len() as u32,
            ..Default::default()
        };
        let mut offset = 0u64;
        for (p, pl) in self.planes.iter().enumerate() {
            let stride = scale_up(width.into(), pl.x_sub)
                .checked_mul(pl.pixel_stride.into())?
                .next_multiple_of(4);
            layout.offsets[p] = offset;
            layout.strides[p] = i32::try_from(stride).ok()?;
            let rows = padded_height >> pl.y_sub;
            offset = offset.checked_add(stride.checked_mul(rows)?)?;
        }
        Some((layout, offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::MAX_PLANES;

    #[test]
    fn names_and_numbers_are_unique() {
        for (i, f) in FORMATS.iter().enumerate() {
            assert!((1..=MAX_PLANES).contains(&f.n_planes()), "{}", f.name);
            for g in &FORMATS[i + 1..] {
                assert!(!f.name.eq_ignore_ascii_case(g.name));
                assert_ne!(f.number, g.number);
            }
        }
        assert_eq!(by_name("nv12").map(|f| f.number), Some(23));
        assert_eq!(by_number(27).map(|f| f.name), Some("GRAY16_LE"));
        assert_eq!(by_number(0), None);
        assert_eq!(by_name("NOPE"), None);
    }

    #[test]
    fn i420_of_odd_sizes_as_gstreamer_lays_it_out() {
        // 17x9: luma rows of 20 bytes for 10 rows, chroma rows of 12 bytes for 5 rows.
        let (v, size) = by_name("I420").unwrap().default_layout(17, 9).unwrap();
        assert_eq!(v.n_planes, 3);
        assert_eq!(&v.strides[..3], &[20, 12, 12]);
        assert_eq!(&v.offsets[..3], &[0, 200, 260]);
        assert_eq!(size, 320);
        assert_eq!(by_name("I420").unwrap().plane_extent(1, 17, 9), (5, 9));
    }

    #[test]
    fn hostile_sizes_have_no_layout() {
        let rgb = by_name("RGB").unwrap();
        assert_eq!(rgb.default_layout(1 << 30, 1), None); // a stride beyond i32
        let (v, size) = by_name("I420")
            .unwrap()
            .default_layout(1 << 30, u32::MAX)
            .unwrap();
        assert_eq!(v.strides[0], 1 << 30);
        assert_eq!(&v.offsets[..3], &[0, 1 << 62, (1 << 62) + (1 << 60)]);
        assert_eq!(size, 3 << 61);
    }

    #[test]
    fn a_plane_fits_its_frame_only_when_every_row_is_inside() {
        let i420 = by_name("I420").unwrap();
        let (v, size) = i420.default_layout(17, 9).unwrap();
        for p in 0..3 {
            assert!(i420.plane_fits(&v, p, size), "plane {p}");
        }
        assert!(!i420.plane_fits(&v, 3, size)); // no such plane
                                                // Plane 2's last row ends at 260 + 4 * 12 + 9 = 317.
        assert!(i420.plane_fits(&v, 2, 317));
        assert!(!i420.plane_fits(&v, 2, 316)); // the last row cut
        let mut bad = v;
        bad.offsets[1] = u64::MAX - 10; // overflows
        assert!(!i420.plane_fits(&bad, 1, size));
        bad = v;
        bad.strides[0] = -20; // negative
        assert!(!i420.plane_fits(&bad, 0, size));
        bad = v;
        bad.strides[0] = 16; // shorter than a row's 17 pixels
        assert!(!i420.plane_fits(&bad, 0, size));
        bad = v;
        bad.n_planes = 1; // not this format's planes
        assert!(!i420.plane_fits(&bad, 0, size));
    }
}
