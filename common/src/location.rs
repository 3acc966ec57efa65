//! Where a ring lives: a name in the per-user ring directory, or a path the user gave.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Longest ring name.
pub const MAX_NAME_LEN: usize = 64;
/// Environment variable that moves the default ring directory (tests, containers).
pub const DIR_ENV: &str = "SHMRING_DIR";
/// File name ending of ring files.
pub const RING_SUFFIX: &str = ".ring";

/// A ring's file: `<dir>/<name>.ring` for a name, or an absolute path given by the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingLocation {
    path: PathBuf,
    /// The directory was chosen by us (default or `dir`), not spelled out by the user
    /// as part of an absolute path; it must then be private to this user.
    managed_dir: bool,
    display: String,
}

impl RingLocation {
    /// Parses what a user typed as `ring=`: a name (`cam1`) that lives in `dir` or the
    /// default ring directory, or an absolute path (`/dev/shm/x.ring`).
    pub fn parse(ring: &str, dir: Option<&Path>) -> Result<Self> {
        if ring.starts_with('/') {
            return Self::from_path(ring);
        }
        validate_name(ring)?;
        let dir = dir.map(Path::to_owned).unwrap_or_else(default_dir);
        Ok(RingLocation {
            path: dir.join(format!("{ring}{RING_SUFFIX}")),
            managed_dir: true,
            display: ring.to_owned(),
        })
    }

    fn from_path(p: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidName {
            name: p.to_owned(),
            reason,
        };
        if p.contains('\0') {
            return Err(invalid("contains a NUL byte"));
        }
        if p.len() > 4000 {
            return Err(invalid("path is longer than 4000 bytes"));
        }
        let path = PathBuf::from(p);
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(invalid("path contains '..'"));
        }
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            return Err(invalid("path names no file"));
        };
        if file.starts_with('.') {
            return Err(invalid("file name starts with '.'"));
        }
        Ok(RingLocation {
            path,
            managed_dir: false,
            display: p.to_owned(),
        })
    }

    /// The ring file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory that holds the ring file.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("/"))
    }

    /// The name as the user gave it, for messages and handles.
    pub fn display_name(&self) -> &str {
        &self.display
    }

    /// True when the directory is ours to create and must be private to this user.
    pub fn is_managed_dir(&self) -> bool {
        self.managed_dir
    }
}

impl std::fmt::Display for RingLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.display, self.path.display())
    }
}

/// `/dev/shm/shmring-<uid>`, or `$SHMRING_DIR` when set.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    PathBuf::from(format!("/dev/shm/shmring-{}", nix::unistd::geteuid()))
}

/// A ring name: 1 to 64 of `A-Z a-z 0-9 _ - .`, not starting with '.', so it can never
/// leave the ring directory nor hide as a dot file.
pub fn validate_name(name: &str) -> Result<()> {
    let invalid = |reason| {
        Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return invalid("it is longer than 64 characters");
    }
    if name.contains('/') {
        return invalid("it contains '/' (give an absolute path, or a plain name)");
    }
    if name.starts_with('.') {
        return invalid("it starts with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return invalid("only letters, digits, '_', '-' and '.' are allowed");
    }
    Ok(())
}

/// Names one frame of one ring: the ring as the user named it, the writer's epoch and
/// the frame's sequence number. As text: `<ring>:<epoch as 16 hex digits>:<seq>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    pub ring: String,
    pub epoch: u64,
    pub seq: u64,
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:016x}:{}", self.ring, self.epoch, self.seq)
    }
}

impl std::str::FromStr for Handle {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = |reason: &'static str| Error::InvalidHandle {
            handle: s.to_owned(),
            reason: reason.into(),
        };
        if s.len() > 4096 {
            return Err(invalid("longer than 4096 bytes"));
        }
        let mut parts = s.rsplitn(3, ':');
        let (Some(seq), Some(epoch), Some(ring)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("expected <ring>:<epoch hex>:<seq>"));
        };
        if ring.is_empty() {
            return Err(invalid("ring is empty"));
        }
        if epoch.len() != 16 {
            return Err(invalid("epoch must be 16 hex digits"));
        }
        let epoch =
            u64::from_str_radix(epoch, 16).map_err(|_| invalid("epoch is not hexadecimal"))?;
        if !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("seq is not a decimal number"));
        }
        let seq: u64 = seq
            .parse()
            .map_err(|_| invalid("seq is not a number that fits 64 bits"))?;
        if epoch == 0 || seq == 0 {
            return Err(invalid("epoch and seq start at 1"));
        }
        Ok(Handle {
            ring: ring.to_owned(),
            epoch,
            seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_ring_directory() {
        let dir = Path::new("/tmp/rings");
        let sut = RingLocation::parse("cam1", Some(dir)).unwrap();
        assert_eq!(sut.path(), Path::new("/tmp/rings/cam1.ring"));
        assert!(sut.is_managed_dir());
        for bad in [
            "",
            "..",
            "../x",
            "a/b",
            ".hidden",
            "a b",
            "x\0",
            &"n".repeat(65),
            "é",
        ] {
            let err = RingLocation::parse(bad, Some(dir)).unwrap_err();
            assert!(
                matches!(err, Error::InvalidName { .. }),
                "{bad:?} gave {err}"
            );
        }
        assert!(RingLocation::parse(&"n".repeat(64), Some(dir)).is_ok());
        assert!(RingLocation::parse("cam.1-a_b", Some(dir)).is_ok());
    }

    #[test]
    fn absolute_paths_are_taken_as_given_but_never_climb() {
        let sut = RingLocation::parse("/dev/shm/mine.ring", None).unwrap();
        assert_eq!(sut.path(), Path::new("/dev/shm/mine.ring"));
        assert!(!sut.is_managed_dir());
        assert!(RingLocation::parse("/dev/shm/../etc/passwd", None).is_err());
        assert!(RingLocation::parse("/", None).is_err());
        assert!(RingLocation::parse("/dev/shm/.x", None).is_err());
    }

    #[test]
    fn error_messages_name_the_problem() {
        let err = RingLocation::parse("a/../b", None).unwrap_err().to_string();
        assert!(err.contains("a/../b") && err.contains('/'), "{err}");
    }

    #[test]
    fn handles_round_trip_and_reject_malformed_text() {
        let h = Handle {
            ring: "cam1".into(),
            epoch: 0xdead_beef_0000_0001,
            seq: 42,
        };
        let s = h.to_string();
        assert_eq!(s, "cam1:deadbeef00000001:42");
        assert_eq!(s.parse::<Handle>().unwrap(), h);
        let p: Handle = "/dev/shm/a:b.ring:00000000000000ff:7".parse().unwrap();
        assert_eq!(p.ring, "/dev/shm/a:b.ring");
        for bad in [
            "",
            "cam1",
            "cam1:42",
            ":00000000000000ff:7",
            "cam1:ff:7",
            "cam1:zz00000000000000:7",
            "cam1:00000000000000ff:-7",
            "cam1:00000000000000ff:+7",
            "cam1:00000000000000ff:99999999999999999999999",
            "cam1:0000000000000000:7",
            "cam1:00000000000000ff:0",
        ] {
            assert!(bad.parse::<Handle>().is_err(), "{bad:?} parsed");
        }
    }
}
