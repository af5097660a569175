//! The portable engine: positional reads, on the caller's thread for `read` and on a pool of
//! reader threads for `submit` (so its queue depth is the number of threads).

use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::{BufferPool, Completion, Extent, IoEngine, IoMetrics, read_error, verify};
use crate::workers::Workers;

pub struct PreadEngine {
    inner: Arc<Reader>,
    threads: Workers,
}

struct Reader {
    metrics: IoMetrics,
    pool: Arc<BufferPool>,
}

impl PreadEngine {
    pub fn new(threads: usize, pool: Arc<BufferPool>) -> io::Result<Self> {
        Ok(PreadEngine {
            inner: Arc::new(Reader {
                metrics: IoMetrics::default(),
                pool,
            }),
            threads: Workers::new("pread", threads)?,
        })
    }
}

impl IoEngine for PreadEngine {
    fn name(&self) -> &'static str {
        "pread"
    }

    fn submit(&self, extents: Vec<Extent>, done: Completion) {
        let reader = self.inner.clone();
        reader.metrics.enqueue(extents.len());
        self.threads.spawn(move || {
            let result = reader.read_all(&extents);
            reader.metrics.dequeue(extents.len());
            done(result);
        });
    }

    fn read(&self, extents: &[Extent]) -> io::Result<Vec<Vec<u8>>> {
        self.inner.metrics.enqueue(extents.len());
        let result = self.inner.read_all(extents);
        self.inner.metrics.dequeue(extents.len());
        result
    }

    fn metrics(&self) -> &IoMetrics {
        &self.inner.metrics
    }

    fn pool(&self) -> &Arc<BufferPool> {
        &self.inner.pool
    }
}

impl Reader {
    fn read_all(&self, extents: &[Extent]) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::with_capacity(extents.len());
        for extent in extents {
            let len = usize::try_from(extent.len).map_err(io::Error::other)?;
            let mut buf = self.pool.take(len);
            let context = |e| read_error(extent, e);
            let read = extent
                .file
                .handle()
                .map_err(context)
                .and_then(|file| file.read_exact_at(&mut buf, extent.offset).map_err(context));
            if let Err(e) = read {
                self.pool.give(buf);
                out.into_iter().for_each(|b| self.pool.give(b));
                return Err(e);
            }
            out.push(buf);
        }
        if let Err(e) = verify(extents) {
            out.into_iter().for_each(|b| self.pool.give(b));
            return Err(e);
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
        let engine = PreadEngine::new(2, BufferPool::new(1 << 20)).unwrap();
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
                file: file.clone(),
                offset: 99,
                len: 5,
            }])
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let (tx, rx) = std::sync::mpsc::channel();
        let whole = Extent {
            file: file.clone(),
            offset: 0,
            len: 100,
        };
        engine.submit(vec![whole], Box::new(move |r| tx.send(r).unwrap()));
        assert_eq!(rx.recv().unwrap().unwrap(), vec![(0u8..100).collect::<Vec<_>>()]);
        assert!(err.to_string().contains("offset 99"), "{err}");
        assert_eq!(
            engine
                .metrics()
                .extents_read
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
    }
}
