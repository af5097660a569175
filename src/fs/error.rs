//! The filesystem's error: an errno chosen in one place, a message, and the level to log at.

use tracing::Level;

use crate::source::memory::MemError;

#[derive(Debug)]
pub struct FsError {
    pub errno: i32,
    pub message: String,
    pub level: Level,
}

impl FsError {
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        FsError {
            errno,
            message: message.into(),
            level: Level::DEBUG,
        }
    }

    /// Not there. Zarr clients probe for files that don't exist, so this logs at debug.
    pub fn not_found() -> Self {
        Self::new(libc::ENOENT, "no such entry")
    }

    /// A write-like call on a source: sources are never written.
    pub fn read_only() -> Self {
        Self::new(libc::EROFS, "sources are read-only")
    }

    /// A chunk that could not be produced: EIO for this read only, logged as an error.
    pub fn chunk(message: String) -> Self {
        FsError {
            errno: libc::EIO,
            message,
            level: Level::ERROR,
        }
    }
}

impl From<MemError> for FsError {
    fn from(e: MemError) -> Self {
        let errno = match e {
            MemError::NotFound => libc::ENOENT,
            MemError::Exists => libc::EEXIST,
            MemError::NotEmpty => libc::ENOTEMPTY,
            MemError::IsDir => libc::EISDIR,
            MemError::NotDir => libc::ENOTDIR,
            MemError::NoSpace => libc::ENOSPC,
            MemError::Invalid => libc::EINVAL,
            MemError::NameTooLong => libc::ENAMETOOLONG,
            MemError::TooBig => libc::EFBIG,
            MemError::Permission => libc::EPERM,
        };
        let level = if e == MemError::NoSpace {
            Level::WARN
        } else {
            Level::DEBUG
        };
        FsError {
            errno,
            message: e.to_string(),
            level,
        }
    }
}

pub type FsResult<T> = Result<T, FsError>;
