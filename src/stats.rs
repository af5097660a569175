//! Live counters of a running daemon, for `zarrmount stats MOUNTPOINT`.
//!
//! The daemon answers on an abstract Unix socket named after its mountpoint, from a thread
//! of its own: asking never goes through the mount (a hung mount cannot hang `stats`) and
//! barely touches what the FUSE threads use (atomic counters, one short lock for the cache's
//! size). Abstract sockets vanish with the process, so nothing is left behind after a crash.

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::cache::CacheMetrics;
use crate::fs::ZarrFs;

#[derive(Debug, Serialize, Deserialize)]
pub struct Stats {
    pub mountpoint: String,
    pub io_engine: String,
    pub cache_budget: u64,
    pub cache_used: u64,
    /// Bytes reserved for fetches in flight (counted against the budget with `cache_used`).
    pub cache_reserved: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_coalesced: u64,
    pub cache_evictions: u64,
    /// Chunks fetched ahead of readers, then asked for, and evicted unread.
    pub prefetch_issued: u64,
    pub prefetch_used: u64,
    pub prefetch_wasted: u64,
    /// Whether read-ahead is on (`-o prefetch=off` turns it off).
    pub prefetch: bool,
    /// Chunk reads served straight from a source byte range, past the cache.
    pub direct_reads: u64,
    pub extents_read: u64,
    pub bytes_read: u64,
    /// Of `bytes_read`, read with `O_DIRECT`: extents the page cache did not hold.
    #[serde(default)]
    pub odirect_bytes: u64,
    /// Of `odirect_bytes`, read into buffers registered with the ring (no pinning per read).
    #[serde(default)]
    pub registered_bytes: u64,
    /// Of `bytes_read`, held by the page cache and served from it mapped, with no copy here.
    #[serde(default)]
    pub mapped_bytes: u64,
    pub queue_depth: u64,
    /// Buffers reused from the pool instead of allocated, and the bytes it holds.
    pub buffers_reused: u64,
    pub buffer_pool_bytes: u64,
    pub chunk_reads: u64,
    pub bytes_served: u64,
    /// Inodes of the virtual tree held: as many as the kernel has looked up and not forgotten.
    #[serde(default)]
    pub inodes: u64,
    /// Chunk files opened through the kernel's page cache: read whole before, re-read
    /// without the daemon.
    #[serde(default)]
    pub page_cache_opens: u64,
}

impl Stats {
    pub fn of(fs: &ZarrFs, mountpoint: &Path) -> Stats {
        let (cache, io) = (fs.cache().metrics(), fs.io().metrics());
        let get = CacheMetrics::get;
        let served = fs.served();
        let (cache_used, cache_reserved) = fs.cache().used();
        Stats {
            mountpoint: mountpoint.display().to_string(),
            io_engine: fs.io().name().into(),
            cache_budget: fs.cache().budget(),
            cache_used,
            cache_reserved,
            cache_hits: get(&cache.hits),
            cache_misses: get(&cache.misses),
            cache_coalesced: get(&cache.coalesced),
            cache_evictions: get(&cache.evictions),
            prefetch_issued: get(&cache.prefetch_issued),
            prefetch_used: get(&cache.prefetch_used),
            prefetch_wasted: get(&cache.prefetch_wasted),
            prefetch: fs.prefetching(),
            direct_reads: get(&cache.direct),
            extents_read: get(&io.extents_read),
            bytes_read: get(&io.bytes_read),
            odirect_bytes: get(&io.odirect_bytes),
            registered_bytes: get(&io.registered_bytes),
            mapped_bytes: get(&io.mapped_bytes),
            queue_depth: get(&io.queued),
            buffers_reused: get(&fs.io().pool().reused),
            buffer_pool_bytes: fs.io().pool().held(),
            chunk_reads: get(&served.reads),
            bytes_served: get(&served.bytes),
            inodes: fs.inode_count() as u64,
            page_cache_opens: get(&served.page_cache_opens),
        }
    }

    /// `name  value` lines, for people.
    pub fn text(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut out = String::new();
        for (key, v) in value.as_object().into_iter().flatten() {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            out.push_str(&format!("{key:<16} {v}\n"));
        }
        out
    }
}

fn address(mountpoint: &Path) -> std::io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(format!("zarrmount-stats:{}", mountpoint.display()))
}

/// Starts answering stats requests for the mount at `mountpoint` (canonical).
pub fn serve(fs: Arc<ZarrFs>, mountpoint: &Path) -> std::io::Result<()> {
    let address = address(mountpoint)?;
    let mountpoint = mountpoint.to_path_buf();
    std::thread::Builder::new().name("stats".into()).spawn(move || {
        let Some(listener) = bind(&address, &mountpoint) else {
            return;
        };
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let body = serde_json::to_vec(&Stats::of(&fs, &mountpoint)).unwrap_or_default();
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            if let Err(e) = stream.write_all(&body) {
                warn!("stats request: {e}");
            }
        }
    })?;
    Ok(())
}

/// Binds the stats socket. The name can still be held for a moment by the daemon of an
/// earlier mount on the same mountpoint, unmounted but not yet exited: wait for it.
fn bind(address: &SocketAddr, mountpoint: &Path) -> Option<UnixListener> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match UnixListener::bind_addr(address) {
            Ok(listener) => return Some(listener),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                warn!("`zarrmount stats` will not reach {}: {e}", mountpoint.display());
                return None;
            }
        }
    }
}

/// Asks the daemon serving `mountpoint` for its counters.
pub fn query(mountpoint: &str) -> anyhow::Result<Stats> {
    // Canonicalize the parent only: resolving the mountpoint itself would ask the mount.
    let absolute = std::path::absolute(mountpoint)?;
    let (Some(parent), Some(name)) = (absolute.parent(), absolute.file_name()) else {
        anyhow::bail!("{mountpoint} is not a mountpoint");
    };
    let path = parent
        .canonicalize()
        .with_context(|| format!("no directory {}", parent.display()))?
        .join(name);
    let mut stream = UnixStream::connect_addr(&address(&path)?)
        .with_context(|| format!("no zarrmount daemon serves {}", path.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut body = Vec::new();
    stream
        .read_to_end(&mut body)
        .context("reading the daemon's stats")?;
    serde_json::from_slice(&body).context("the daemon's stats are not JSON")
}
