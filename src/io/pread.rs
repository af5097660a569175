//! The portable engine: positional reads on the calling thread.

use std::io;
use std::os::unix::fs::FileExt;

use super::{Extent, IoEngine, IoMetrics, read_error};

#[derive(Debug, Default)]
pub struct PreadEngine {
    metrics: IoMetrics,
}

impl IoEngine for PreadEngine {
    fn name(&self) -> &'static str {
        "pread"
    }

    fn read(&self, extents: &[Extent]) -> io::Result<Vec<Vec<u8>>> {
        self.metrics.queue(extents.len(), || self.read_all(extents))
    }

    fn metrics(&self) -> &IoMetrics {
        &self.metrics
    }
}

impl PreadEngine {
    fn read_all(&self, extents: &[Extent]) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::with_capacity(extents.len());
        for extent in extents {
            let len = usize::try_from(extent.len).map_err(io::Error::other)?;
            let mut buf = vec![0u8; len];
            let context = |e| read_error(extent, e);
            extent
                .file
                .handle()
                .map_err(context)?
                .read_exact_at(&mut buf, extent.offset)
                .map_err(context)?;
            out.push(buf);
        }
        self.metrics
            .record(extents.len() as u64, extents.iter().map(|e| e.len).sum());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::SourceFile;

    #[test]
    fn reads_ranges_and_refuses_short_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, (0u8..100).collect::<Vec<_>>()).unwrap();
        let file = SourceFile::new(&path);
        let engine = PreadEngine::default();
        let got = engine
            .read(&[
                Extent {
                    file: file.clone(),
                    offset: 10,
                    len: 3,
                },
                Extent {
                    file: file.clone(),
                    offset: 98,
                    len: 2,
                },
            ])
            .unwrap();
        assert_eq!(got, vec![vec![10, 11, 12], vec![98, 99]]);
        let err = engine
            .read(&[Extent {
                file,
                offset: 99,
                len: 5,
            }])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("offset 99"), "{err}");
        assert_eq!(
            engine
                .metrics()
                .extents_read
                .load(std::sync::atomic::Ordering::Relaxed),
            2
        );
    }
}
