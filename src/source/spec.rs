//! Parsing the SOURCE arguments: `memory://NAME`, `FORMAT://PATH`, or a plain path.

use std::path::{Path, PathBuf};

use super::{Source, by_scheme, detect};

/// One SOURCE argument, validated.
#[derive(Clone)]
pub enum SourceSpec {
    /// A writable in-RAM store.
    Memory { name: String },
    /// One dataset of a known format.
    Dataset {
        format: &'static dyn Source,
        path: PathBuf,
    },
    /// A directory mirrored as groups, each dataset inside found by detection.
    Directory { path: PathBuf },
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Memory { name } => write!(f, "memory://{name}"),
            SourceSpec::Dataset { format, path } => write!(f, "{}://{}", format.name(), path.display()),
            SourceSpec::Directory { path } => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown source scheme '{0}://' (known: {1})")]
    UnknownScheme(String, String),
    #[error("source {0} does not exist")]
    Missing(String),
    #[error("'{0}' is not a valid memory store name (use letters, digits, '-', '_' or '.')")]
    BadName(String),
    #[error("source {0} is neither a directory nor a dataset zarrmount recognises")]
    Unrecognised(String),
}

impl SourceSpec {
    pub fn parse(arg: &str) -> Result<Self, SpecError> {
        let Some((scheme, rest)) = arg.split_once("://") else {
            return Self::plain(Path::new(arg));
        };
        if scheme == "memory" {
            let valid = !rest.is_empty()
                && rest != "."
                && rest != ".."
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            return if valid {
                Ok(SourceSpec::Memory { name: rest.into() })
            } else {
                Err(SpecError::BadName(rest.into()))
            };
        }
        let format = by_scheme(scheme).ok_or_else(|| {
            let known: Vec<_> = std::iter::once("memory")
                .chain(super::FORMATS.iter().map(|f| f.name()))
                .collect();
            SpecError::UnknownScheme(scheme.into(), known.join(", "))
        })?;
        let path = PathBuf::from(rest);
        if !format.exists(&path) {
            return Err(SpecError::Missing(rest.into()));
        }
        Ok(SourceSpec::Dataset { format, path })
    }

    fn plain(path: &Path) -> Result<Self, SpecError> {
        let shown = path.display().to_string();
        if !path.exists() {
            return Err(SpecError::Missing(shown));
        }
        match detect(path) {
            Some(format) => Ok(SourceSpec::Dataset {
                format,
                path: path.into(),
            }),
            None if path.is_dir() => Ok(SourceSpec::Directory { path: path.into() }),
            None => Err(SpecError::Unrecognised(shown)),
        }
    }

    /// The name of this source's child under a multi-source root.
    pub fn name(&self) -> String {
        let file_name = |path: &Path| {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.into());
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "root".into())
        };
        match self {
            SourceSpec::Memory { name } => name.clone(),
            SourceSpec::Dataset { format, path } => {
                format.dataset_name(path).unwrap_or_else(|| file_name(path))
            }
            SourceSpec::Directory { path } => file_name(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data.bin");
        std::fs::write(&file, b"x").unwrap();
        let spec = SourceSpec::parse("memory://scratch").unwrap();
        assert!(matches!(&spec, SourceSpec::Memory { name } if name == "scratch"));
        assert_eq!(spec.name(), "scratch");
        let spec = SourceSpec::parse(&format!("raw://{}", file.display())).unwrap();
        assert!(matches!(&spec, SourceSpec::Dataset { format, .. } if format.name() == "raw"));
        assert_eq!(spec.name(), "data.bin");
        let spec = SourceSpec::parse(&dir.path().display().to_string()).unwrap();
        assert!(matches!(spec, SourceSpec::Directory { .. }));
    }

    #[test]
    fn refuses_what_it_cannot_mount() {
        assert!(matches!(SourceSpec::parse("ftp://x"), Err(SpecError::UnknownScheme(s, _)) if s == "ftp"));
        assert!(matches!(
            SourceSpec::parse("/no/such/dir"),
            Err(SpecError::Missing(_))
        ));
        assert!(matches!(
            SourceSpec::parse("raw:///no/such"),
            Err(SpecError::Missing(_))
        ));
        for bad in ["memory://", "memory://a/b", "memory://..", "memory://x y"] {
            assert!(
                matches!(SourceSpec::parse(bad), Err(SpecError::BadName(_))),
                "{bad}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            SourceSpec::parse(&file.display().to_string()),
            Err(SpecError::Unrecognised(_))
        ));
    }
}
