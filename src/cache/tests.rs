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

/// A chunk whose bytes are a formula of its index, so every result can be checked.
fn chunk(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

#[test]
fn hits_after_the_first_fetch() {
    let cache = ChunkCache::new(1 << 20);
    let fetches = AtomicUsize::new(0);
    for _ in 0..3 {
        let got = cache.get_or_fetch(&key(7), || {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(chunk(7, 100))
        });
        assert_eq!(&*got.unwrap(), &chunk(7, 100)[..]);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    assert_eq!(CacheMetrics::get(&cache.metrics().hits), 2);
}

#[test]
fn stays_within_its_byte_budget_evicting_least_recently_used() {
    let cache = ChunkCache::new(1000);
    for i in 0..4 {
        cache.get_or_fetch(&key(i), || Ok(chunk(i, 300))).unwrap();
    }
    assert!(cache.used() <= 1000);
    assert_eq!(CacheMetrics::get(&cache.metrics().evictions), 1);
    // Chunk 0 was evicted (least recently used), chunk 3 is still there.
    let refetched = AtomicUsize::new(0);
    let fetch = |i| {
        refetched.fetch_add(1, Ordering::SeqCst);
        Ok(chunk(i, 300))
    };
    cache.get_or_fetch(&key(3), || fetch(3)).unwrap();
    assert_eq!(refetched.load(Ordering::SeqCst), 0);
    cache.get_or_fetch(&key(0), || fetch(0)).unwrap();
    assert_eq!(refetched.load(Ordering::SeqCst), 1);
    // Larger than the budget: served, not kept.
    assert_eq!(
        cache.get_or_fetch(&key(9), || Ok(chunk(9, 2000))).unwrap().len(),
        2000
    );
    assert!(cache.used() <= 1000);
    assert_eq!(CacheMetrics::get(&cache.metrics().uncached), 1);
}

#[test]
fn concurrent_readers_of_one_chunk_cause_one_fetch() {
    let cache = Arc::new(ChunkCache::new(1 << 20));
    let fetches = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (cache, fetches, barrier) = (cache.clone(), fetches.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache
                    .get_or_fetch(&key(1), || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        Ok(chunk(1, 64))
                    })
                    .unwrap()
            })
        })
        .collect();
    for reader in readers {
        assert_eq!(&*reader.join().unwrap(), &chunk(1, 64)[..]);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
}

#[test]
fn errors_reach_every_waiter_but_are_not_cached() {
    let cache = ChunkCache::new(1 << 20);
    let err = cache
        .get_or_fetch(&key(2), || Err(ChunkError::Decode("bad bytes".into())))
        .unwrap_err();
    assert!(err.to_string().contains("bad bytes"));
    assert_eq!(
        &*cache.get_or_fetch(&key(2), || Ok(chunk(2, 8))).unwrap(),
        &chunk(2, 8)[..]
    );
}

#[test]
fn a_panicking_fetch_does_not_strand_its_waiters() {
    let cache = Arc::new(ChunkCache::new(1 << 20));
    let leader = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let _ = cache.get_or_fetch(&key(5), || {
                std::thread::sleep(Duration::from_millis(100));
                panic!("decoder bug")
            });
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let waited = cache.get_or_fetch(&key(5), || Ok(chunk(5, 4)));
    assert!(leader.join().is_err());
    // Either it joined the doomed flight (error) or fetched after it (data); never a hang.
    if let Ok(bytes) = waited {
        assert_eq!(&*bytes, &chunk(5, 4)[..]);
    }
    assert_eq!(
        &*cache.get_or_fetch(&key(5), || Ok(chunk(5, 4))).unwrap(),
        &chunk(5, 4)[..]
    );
}
