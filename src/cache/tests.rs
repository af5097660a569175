use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::*;

fn key(i: u64) -> ChunkKey {
    ChunkKey {
        dataset: 1,
        array: ArrayId(0),
        coords: vec![i].into(),
    }
}

impl ChunkCache {
    /// `get_or_fetch` reserving nothing ahead, for tests about hits, errors and flights.
    fn get_or_fetch_(
        self: &Arc<Self>,
        key: &ChunkKey,
        fetch: impl FnOnce() -> Result<Buffer, ChunkError>,
    ) -> ChunkResult {
        self.get_or_fetch(key, 0, fetch)
    }
}

/// A chunk whose bytes are a formula of its index, so every result can be checked.
fn chunk(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

#[test]
fn hits_after_the_first_fetch() {
    let cache = ChunkCache::new(1 << 20, 0);
    let fetches = AtomicUsize::new(0);
    for _ in 0..3 {
        let got = cache.get_or_fetch_(&key(7), || {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(chunk(7, 100).into())
        });
        assert_eq!(&**got.unwrap(), &chunk(7, 100)[..]);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(CacheMetrics::get(&cache.metrics().hits), 2);
}

#[test]
fn stays_within_its_byte_budget_evicting_least_recently_used() {
    let cache = ChunkCache::new(1000, 0);
    for i in 0..4 {
        cache.get_or_fetch_(&key(i), || Ok(chunk(i, 300).into())).unwrap();
    }
    assert!(cache.used().0 <= 1000);
    assert_eq!(CacheMetrics::get(&cache.metrics().evictions), 1);
    // Chunk 0 was evicted (least recently used), chunk 3 is still there.
    let refetched = AtomicUsize::new(0);
    let fetch = |i| {
        refetched.fetch_add(1, Ordering::SeqCst);
        Ok(chunk(i, 300).into())
    };
    cache.get_or_fetch_(&key(3), || fetch(3)).unwrap();
    assert_eq!(refetched.load(Ordering::SeqCst), 0);
    cache.get_or_fetch_(&key(0), || fetch(0)).unwrap();
    assert_eq!(refetched.load(Ordering::SeqCst), 1);
    // Larger than the budget: served, not kept.
    assert_eq!(
        cache
            .get_or_fetch_(&key(9), || Ok(chunk(9, 2000).into()))
            .unwrap()
            .len(),
        2000
    );
    assert!(cache.used().0 <= 1000);
    assert_eq!(CacheMetrics::get(&cache.metrics().uncached), 1);
}

#[test]
fn concurrent_readers_of_one_chunk_cause_one_fetch() {
    let cache = ChunkCache::new(1 << 20, 0);
    let fetches = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (cache, fetches, barrier) = (cache.clone(), fetches.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache
                    .get_or_fetch_(&key(1), || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        Ok(chunk(1, 64).into())
                    })
                    .unwrap()
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(&**reader.join().unwrap(), &chunk(1, 64)[..]);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[test]
fn errors_reach_every_waiter_but_are_not_cached() {
    let cache = ChunkCache::new(1 << 20, 0);
    let err = cache
        .get_or_fetch_(&key(2), || Err(ChunkError::Decode("bad bytes".into())))
        .unwrap_err();
    assert!(err.to_string().contains("bad bytes"));
    assert_eq!(
        &**cache.get_or_fetch_(&key(2), || Ok(chunk(2, 8).into())).unwrap(),
        &chunk(2, 8)[..]
    );
}

#[test]
fn a_panicking_fetch_does_not_strand_its_waiters() {
    let cache = ChunkCache::new(1 << 20, 0);
    let leader = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let _ = cache.get_or_fetch_(&key(5), || {
                std::thread::sleep(Duration::from_millis(100));
                panic!("decoder bug")
            });
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let waited = cache.get_or_fetch_(&key(5), || Ok(chunk(5, 4).into()));
    assert!(leader.join().is_err());
    // Either it joined the doomed flight (error) or fetched after it (data); never a hang.
    if let Ok(bytes) = waited {
        assert_eq!(&**bytes, &chunk(5, 4)[..]);
    }
    assert_eq!(
        &**cache.get_or_fetch_(&key(5), || Ok(chunk(5, 4).into())).unwrap(),
        &chunk(5, 4)[..]
    );
}

#[test]
fn fetches_in_flight_count_against_the_budget() {
    let cache = ChunkCache::new(1000, 1000);
    for i in 0..3 {
        cache
            .get_or_fetch(&key(i), 300, || Ok(chunk(i, 300).into()))
            .unwrap();
    }
    assert_eq!(cache.used(), (900, 0));
    // A reader's fetch of 300 bytes makes room first: one chunk goes before the read starts.
    let ticket = cache.claim(&key(10), 300, 0, Box::new(|_| {})).unwrap();
    assert_eq!(cache.used(), (600, 300));
    // A prefetch that cannot fit beside what is in flight is not started.
    let big = cache.claim_prefetch(&key(11), 800);
    assert!(big.is_none());
    let small = cache.claim_prefetch(&key(12), 400).unwrap();
    assert_eq!(cache.used(), (300, 700));
    ticket.finish(Ok(chunk(10, 300).into()));
    small.finish(Ok(chunk(12, 400).into()));
    let (held, reserved) = cache.used();
    assert!(held <= 1000 && reserved == 0, "{held} {reserved}");
}

#[test]
fn prefetched_chunks_are_counted_when_read_and_when_wasted() {
    let cache = ChunkCache::new(1000, 500);
    let metrics = cache.metrics();
    cache
        .claim_prefetch(&key(1), 200)
        .unwrap()
        .finish(Ok(chunk(1, 200).into()));
    cache
        .claim_prefetch(&key(2), 200)
        .unwrap()
        .finish(Ok(chunk(2, 200).into()));
    // The prefetch cap holds unread prefetched bytes: a third does not fit.
    assert!(cache.claim_prefetch(&key(3), 200).is_none());
    // Nothing is prefetched twice, cached or in flight.
    assert!(cache.claim_prefetch(&key(1), 200).is_none());
    assert_eq!(&**cache.cached(&key(1), 0).unwrap(), &chunk(1, 200)[..]);
    cache.cached(&key(1), 0).unwrap();
    assert_eq!(
        CacheMetrics::get(&metrics.prefetch_used),
        1,
        "counted once per chunk"
    );
    // Reading one made room for the next.
    let ticket = cache.claim_prefetch(&key(3), 200).unwrap();
    // A reader asking for a chunk being prefetched waits for that fetch, and uses it.
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter: Waiter = Box::new(move |r| tx.send(r).unwrap());
    assert!(cache.claim(&key(3), 200, 0, waiter).is_none());
    ticket.finish(Ok(chunk(3, 200).into()));
    assert_eq!(&**rx.recv().unwrap().unwrap(), &chunk(3, 200)[..]);
    assert_eq!(CacheMetrics::get(&metrics.prefetch_used), 2);
    // Filling the cache with other chunks evicts chunk 2, never read: wasted.
    for i in 20..25 {
        cache
            .get_or_fetch(&key(i), 200, || Ok(chunk(i, 200).into()))
            .unwrap();
    }
    assert_eq!(CacheMetrics::get(&metrics.prefetch_issued), 3);
    assert_eq!(CacheMetrics::get(&metrics.prefetch_wasted), 1);
}

#[test]
fn a_dropped_ticket_fails_its_waiters_and_frees_its_reservation() {
    let cache = ChunkCache::new(1000, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let ticket = cache.claim(&key(1), 100, 0, Box::new(move |r| tx.send(r).unwrap()));
    drop(ticket);
    assert!(rx.recv().unwrap().is_err());
    assert_eq!(cache.used(), (0, 0));
}

#[test]
fn a_read_once_chunk_goes_when_served_whole() {
    let cache = ChunkCache::new(1000, 1000);
    let ticket = cache.claim_prefetch(&key(1), 100).unwrap();
    ticket.read_once();
    // A reader waiting for the fetch serves the first half.
    let (tx, rx) = std::sync::mpsc::channel();
    assert!(
        cache
            .claim(&key(1), 100, 50, Box::new(move |r| tx.send(r).unwrap()))
            .is_none()
    );
    ticket.finish(Ok(chunk(1, 100).into()));
    rx.recv().unwrap().unwrap();
    assert_eq!(cache.used(), (100, 0));
    // The second half is served from the cache; then the chunk is gone.
    assert!(cache.cached(&key(1), 50).is_some());
    assert_eq!(cache.used(), (0, 0));
    assert!(cache.cached(&key(1), 50).is_none());
}
