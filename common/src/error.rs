//! Errors of the ring: each says which ring, what was expected and what was found.

use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// A ring name that is empty, too long, or could leave the ring directory.
    InvalidName { name: String, reason: &'static str },
    /// No ring file at the path (yet).
    NotFound { path: PathBuf },
    /// Something is at the path, but it is not a file we may map.
    NotARingFile { path: PathBuf, found: String },
    /// The file is a ring of a layout this build does not read.
    UnsupportedVersion {
        path: PathBuf,
        found: (u32, u32),
        supported: u32,
    },
    /// The file's contents fail a check; `what` names the field and the values.
    Corrupt { path: PathBuf, what: String },
    /// Another process truncated the file while this one had it mapped (as `role`,
    /// "writer" or "reader"); the mapping now reads as zeros.
    Truncated { path: PathBuf, role: &'static str },
    /// The file or its directory has permissions or an owner we refuse.
    Insecure { path: PathBuf, what: String },
    /// Another live writer holds the ring.
    Busy { path: PathBuf, pid: u32 },
    /// A frame does not fit the ring's slots.
    FrameTooLarge { len: u64, capacity: u64 },
    /// Every payload slot the next frame could go to is held (leased by readers beyond
    /// the lease budget, or wrapped by a buffer of the writer's own process): the frame
    /// is dropped rather than written over bytes somebody is reading.
    SlotsHeld { path: PathBuf, seq: u64 },
    /// The caps string does not fit its slot.
    CapsTooLong { len: usize, capacity: usize },
    /// Geometry asked of a writer that the format cannot hold.
    InvalidGeometry { what: String },
    /// A handle string that does not parse.
    InvalidHandle {
        handle: String,
        reason: std::borrow::Cow<'static, str>,
    },
    /// An operating-system call failed.
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(
        path: &std::path::Path,
        op: &'static str,
        e: impl Into<std::io::Error>,
    ) -> Self {
        Error::Io {
            path: path.to_owned(),
            op,
            source: e.into(),
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path, what: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.to_owned(),
            what: what.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidName { name, reason } => {
                write!(f, "invalid ring name {name:?}: {reason}")
            }
            Error::NotFound { path } => write!(f, "no ring at {}", path.display()),
            Error::NotARingFile { path, found } => {
                write!(f, "{} is not a ring file: found {found}", path.display())
            }
            Error::UnsupportedVersion {
                path,
                found,
                supported,
            } => write!(
                f,
                "{} has ring layout {}.{}, this build reads layout {supported}.x",
                path.display(),
                found.0,
                found.1
            ),
            Error::Corrupt { path, what } => write!(f, "{} is corrupt: {what}", path.display()),
            Error::Truncated { path, role } => write!(
                f,
                "{} was truncated by another process under the {role}; \
                 its frames are lost (the mapping now reads as zeros)",
                path.display()
            ),
            Error::Insecure { path, what } => write!(f, "refusing {}: {what}", path.display()),
            Error::Busy { path, pid: 0 } => write!(
                f,
                "ring {} is held by another writer (whose pid is not known here)",
                path.display()
            ),
            Error::Busy { path, pid } => {
                write!(
                    f,
                    "ring {} already has a live writer (pid {pid})",
                    path.display()
                )
            }
            Error::FrameTooLarge { len, capacity } => {
                write!(
                    f,
                    "frame of {len} bytes does not fit a ring slot of {capacity} bytes"
                )
            }
            Error::SlotsHeld { path, seq } => write!(
                f,
                "frame {seq} of {} dropped: every slot it could go to is held \
                 (a reader leases more slots than its budget allows)",
                path.display()
            ),
            Error::CapsTooLong { len, capacity } => {
                write!(
                    f,
                    "caps string of {len} bytes is longer than the {capacity} a ring holds"
                )
            }
            Error::InvalidGeometry { what } => write!(f, "invalid ring geometry: {what}"),
            Error::InvalidHandle { handle, reason } => {
                write!(f, "invalid frame handle {handle:?}: {reason}")
            }
            Error::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
