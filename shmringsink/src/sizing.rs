//! How big a ring `shmringsink` makes: slots by count, by time or by default half a
//! second, lease and pool slots, all within the memory budget of automatic sizing.

/// With `slots=0`, the ring holds this much video (at the caps' frame rate).
const AUTO_SLOTS_BUDGET_MS: u64 = 500;
const AUTO_SLOTS_MIN: u32 = 4;
const AUTO_SLOTS_MAX: u32 = 64;
/// With `slots=0`, the ring never takes more shared memory than this.
const AUTO_MEMORY_BUDGET: u64 = 1 << 30;

/// Lease slots asked for, fewer if slots and spares together would pass the memory
/// budget of automatic sizing, but at least 2 (so huge frames can still be leased).
pub(crate) fn lease_slots_within_budget(asked: u32, slots: u32, frame_size: u64) -> u32 {
    asked.min(room_within_budget(slots, frame_size).max(2))
}

/// Pool slots asked for, fewer if they would pass the memory budget of automatic sizing
/// or the ring's limit of extra slots (none at all if need be: frames are then copied).
pub(crate) fn pool_slots_within_budget(
    asked: u32,
    slots: u32,
    spares: u32,
    frame_size: u64,
) -> u32 {
    asked
        .min(room_within_budget(slots + spares, frame_size))
        .min(shmring_common::layout::MAX_SPARES.saturating_sub(spares))
}

/// Frames that fit the memory budget of automatic sizing beside `used` ones.
fn room_within_budget(used: u32, frame_size: u64) -> u32 {
    let room = (AUTO_MEMORY_BUDGET / frame_size.max(1)).saturating_sub(u64::from(used));
    room.min(u64::from(u32::MAX)) as u32
}

/// Slots for a ring of frames of `frame_size` at the caps' frame rate: `slots` when
/// set, else `history` (or half a second) of video, within the memory budget.
pub(crate) fn slot_count(asked: u32, history: u64, info: &gst_video::VideoInfo) -> u32 {
    if asked != 0 {
        return asked.max(shmring_common::layout::MIN_SLOTS);
    }
    let (keep_ms, most) = if history > 0 {
        (
            history.div_ceil(1_000_000),
            shmring_common::layout::MAX_SLOTS,
        )
    } else {
        (AUTO_SLOTS_BUDGET_MS, AUTO_SLOTS_MAX)
    };
    let fps = info.fps();
    let by_time = if fps.numer() > 0 && fps.denom() > 0 {
        keep_ms
            .saturating_mul(fps.numer() as u64)
            .div_ceil(1000 * fps.denom() as u64)
    } else {
        u64::from(AUTO_SLOTS_MIN)
    };
    let by_memory = AUTO_MEMORY_BUDGET / (info.size() as u64).max(1);
    by_time
        .clamp(u64::from(AUTO_SLOTS_MIN), u64::from(most))
        .min(by_memory)
        .max(2) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_slots_stay_within_the_memory_budget() {
        let mb = 1 << 20;
        assert_eq!(
            lease_slots_within_budget(8, 15, 3 * mb),
            8,
            "1080p: all of them"
        );
        assert_eq!(
            lease_slots_within_budget(8, 15, 12 * mb),
            8,
            "4K: all of them"
        );
        assert_eq!(
            lease_slots_within_budget(8, 4, 265 * mb),
            2,
            "8K RGBA64: the minimum"
        );
        assert_eq!(
            lease_slots_within_budget(0, 15, 3 * mb),
            0,
            "0 means copies"
        );
    }

    #[test]
    fn pool_slots_stay_within_the_memory_budget_and_the_format() {
        let mb = 1 << 20;
        assert_eq!(pool_slots_within_budget(4, 15, 8, 3 * mb), 4, "1080p");
        assert_eq!(
            pool_slots_within_budget(4, 4, 2, 265 * mb),
            0,
            "8K RGBA64: none"
        );
        assert_eq!(
            pool_slots_within_budget(64, 4, 8, 1024),
            56,
            "64 extra slots in all"
        );
    }
}
