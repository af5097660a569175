//! What a memory-store operation can refuse, in POSIX terms.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("directory not empty")]
    NotEmpty,
    #[error("is a directory")]
    IsDir,
    #[error("not a directory")]
    NotDir,
    #[error("memory limit of the store reached")]
    NoSpace,
    #[error("invalid name or move")]
    Invalid,
    #[error("name too long")]
    NameTooLong,
    #[error("file too large")]
    TooBig,
    #[error("operation not permitted")]
    Permission,
}
