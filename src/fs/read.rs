//! Reading chunk files: from the chunk cache, from a fetch in flight, straight from a source
//! byte range, or through a new fetch; then telling the prefetcher, which may start fetches
//! ahead of the reader. Nothing here blocks: the reply is sent by whichever thread has the
//! bytes (a decode worker, or this one on a cache hit), so FUSE threads never wait on a disk.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::error;

use super::inode::ArrayRef;
use super::{Data, FsError, FsResult, ZarrFs, clamp};
use crate::cache::{ChunkCache, ChunkKey, Waiter};
use crate::io::{Buffer, Extent, IoEngine, is_cached, map_if_cached};
use crate::prefetch::Prefetcher;
use crate::source::ChunkError;
use crate::workers::Workers;

/// What chunk reads go through.
pub struct ReadPath {
    pub cache: Arc<ChunkCache>,
    pub io: Arc<dyn IoEngine>,
    /// Decode work and replies, off the FUSE and I/O threads.
    pub workers: Workers,
    /// None with `-o prefetch=off`.
    pub prefetch: Option<Prefetcher>,
}

/// Where a read's answer goes.
pub type ReadReply = Box<dyn FnOnce(FsResult<Data>) + Send>;

/// A chunk read's answer before it becomes a reply (errors still as text).
type Respond = Box<dyn FnOnce(Result<Data, String>) + Send>;

impl ZarrFs {
    pub(super) fn read_chunk(
        &self,
        array: &Arc<ArrayRef>,
        coords: &Arc<[u64]>,
        offset: u64,
        size: u32,
        reply: ReadReply,
    ) {
        let path = &self.read_path;
        let key = ChunkKey {
            dataset: array.dataset.id,
            array: array.spec.id,
            coords: coords[..].into(),
        };
        let file_size = array.spec.chunk_file_size(coords);
        if offset >= file_size {
            return reply(Ok(Data::Owned(Vec::new()))); // end of file: nothing to fetch
        }
        let respond = self.responder(array.clone(), coords.clone(), reply);
        let serving = clamp(offset, size, file_size as usize).len() as u64;
        // Read ahead first: answering frees the reader to ask for the next chunk, which must
        // find its prefetch claimed, not race it to the source (a sequential reader's chunk
        // was mostly prefetched already, so this rarely delays a fetch).
        self.read_ahead(array, coords);
        // A decoded chunk is read in several requests: only the first one plans and fetches.
        if let Some(bytes) = path.cache.cached(&key, serving) {
            let range = clamp(offset, size, bytes.len());
            respond(Ok(Data::Chunk(bytes, range)));
        } else {
            self.fetch(array, &key, (offset, size, serving), Box::new(respond));
        }
    }

    /// A chunk not in the cache. One that is a single byte range of a source file (a box-sized
    /// plotfile chunk, a raw block) and that nobody is fetching is read straight from the
    /// source, just the requested part: the kernel's page cache holds those bytes, or will
    /// once read, so copying them into the chunk cache too would only cost memory and time.
    /// Bytes it holds already are mapped, not copied (`io::Mapped`). Unless the engine reads
    /// them past the page cache (O_DIRECT): then nothing would keep them for the chunk file's
    /// next part, so it is fetched whole into the cache until served. Every other chunk is
    /// fetched whole into the cache, once, whoever else asks meanwhile.
    fn fetch(&self, array: &ArrayRef, key: &ChunkKey, request: (u64, u32, u64), respond: Respond) {
        let (offset, size, serving) = request;
        let path = &self.read_path;
        let expected = array.spec.chunk_file_size(&key.coords);
        let plan = || array.dataset.planner.plan(array.spec.id, &key.coords);
        let mut planned = None;
        if !path.cache.in_flight(key) {
            match plan() {
                Ok(plan) => planned = Some(plan),
                Err(e) => return respond(Err(ChunkError::Plan(e).to_string())),
            }
        }
        let byte_range = planned.as_ref().and_then(|p| p.as_byte_range(expected));
        if let Some(extent) = byte_range {
            let range = clamp(offset, size, expected as usize);
            let part = Extent {
                offset: extent.offset + range.start as u64,
                len: range.len() as u64,
                ..extent.clone()
            };
            if let Some(bytes) = map_if_cached(&part) {
                path.cache.metrics().direct();
                path.io.metrics().mapped(part.len);
                return respond(Ok(Data::Mapped(bytes)));
            }
            if !path.io.reads_past_page_cache(extent) {
                path.cache.metrics().direct();
                let (workers, pool) = (path.workers.clone(), path.io.pool().clone());
                let done = move |read: std::io::Result<Vec<Vec<u8>>>| {
                    let part =
                        read.map(|mut buffers| Buffer::pooled(buffers.pop().unwrap_or_default(), &pool));
                    respond(part.map(Data::Part).map_err(|e| ChunkError::from(e).to_string()));
                };
                return path.io.submit(
                    vec![part],
                    Box::new(move |read| workers.spawn(move || done(read))),
                );
            }
        }
        let waiter: Waiter = Box::new(move |result| {
            respond(result.map_err(|e| e.to_string()).map(|bytes| {
                let range = clamp(offset, size, bytes.len());
                Data::Chunk(bytes, range)
            }))
        });
        let Some(ticket) = path.cache.claim(key, expected, serving, waiter) else {
            return;
        };
        // A byte range read past the page cache is kept only until served whole, as a
        // prefetched one: the chunk file's next open goes through the kernel's page cache
        // (see `ZarrFs::open`), which keeps it from its next read on. Holding every chunk of
        // a scan here too faulted in fresh pages for each (README, "Cold bytes").
        if byte_range.is_some() {
            ticket.read_once();
        }
        match planned.map_or_else(plan, Ok) {
            Ok(plan) => plan.start(&path.io, &path.workers, expected, move |chunk| {
                ticket.finish(chunk)
            }),
            Err(e) => ticket.finish(Err(ChunkError::Plan(e))),
        }
    }

    /// Starts fetches of the chunks the prefetcher expects next.
    fn read_ahead(&self, array: &ArrayRef, coords: &[u64]) {
        let path = &self.read_path;
        let Some(prefetcher) = &path.prefetch else {
            return;
        };
        for coords in prefetcher.observe(array.dataset.id, &array.spec, coords) {
            let expected = array.spec.chunk_file_size(&coords);
            let key = ChunkKey {
                dataset: array.dataset.id,
                array: array.spec.id,
                coords: coords.into(),
            };
            if path.cache.holds(&key) {
                continue;
            }
            // A plan that fails is reported by the read of that chunk, if one comes.
            let Ok(plan) = array.dataset.planner.plan(array.spec.id, &key.coords) else {
                continue;
            };
            let byte_range = plan.as_byte_range(expected);
            // A byte range the page cache holds is served from it when asked for (mapped, no
            // copy): fetching it ahead would only copy it. The window stops there, which
            // costs a warm reader one check per read; it moves on past it with the reader.
            if byte_range.is_some_and(is_cached) {
                break;
            }
            let Some(ticket) = path.cache.claim_prefetch(&key, expected) else {
                continue;
            };
            if byte_range.is_some() {
                ticket.read_once();
            }
            plan.start(&path.io, &path.workers, expected, move |chunk| {
                ticket.finish(chunk)
            })
        }
    }

    /// Counts what is served and turns errors into a logged `EIO` naming the chunk.
    fn responder(
        &self,
        array: Arc<ArrayRef>,
        coords: Arc<[u64]>,
        reply: ReadReply,
    ) -> impl FnOnce(Result<Data, String>) + Send + 'static {
        let served = self.served.clone();
        move |result| match result {
            Ok(data) => {
                served.reads.fetch_add(1, Ordering::Relaxed);
                let len = data.as_slice().len() as u64;
                served.bytes.fetch_add(len, Ordering::Relaxed);
                reply(Ok(data));
            }
            Err(e) => {
                let (path, name) = (array.dataset.path.display(), &array.path);
                let message = format!("{path} {name}: chunk {coords:?}: {e}");
                error!("{message}");
                reply(Err(FsError::chunk(message)));
            }
        }
    }
}
