//! Memory in transparent huge pages, for buffers of a chunk's size.
//!
//! The daemon's large buffers (chunks of 2 MiB and more, direct-read scratch) are filled once
//! and handed to the kernel for every reply. In 4 KiB pages each costs a page fault per page
//! when first written and a page-table walk per page each time `/dev/fuse` or the disk takes
//! it (`gup_fast_fallback` was 3 % of a warm per-box pass). Worse, a direct read into 4 KiB
//! pages goes to the disk as one request per 254 pages (the queue's segment limit), where a
//! huge page is one: `fio` read a host-cached disk at 2.1–2.6 GB/s into huge pages against
//! 1.2 GB/s into 4 KiB pages, and `engine_depth` 1.6–1.9 GB/s against 0.9–1.1.
//!
//! With transparent huge pages off (or `never`), the memory is plain pages and works the
//! same, only slower.

use std::alloc::{GlobalAlloc, Layout, System};

/// The huge page size of x86-64 and most arm64 kernels; the alignment asked of mappings.
pub const HUGE_PAGE: usize = 2 << 20;

/// A fresh mapping of at least `len` bytes (zeroed) starting on a [`HUGE_PAGE`] boundary,
/// with huge pages asked for; null if the kernel refuses it.
pub(crate) fn map(len: usize) -> *mut u8 {
    let len = mapped_len(len);
    // Room to trim to the next huge page boundary.
    let Some(span) = len.checked_add(HUGE_PAGE) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a fresh private anonymous mapping; only its aligned part is kept.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    let head = (raw as usize).next_multiple_of(HUGE_PAGE) - raw as usize;
    let raw = raw.cast::<u8>();
    // SAFETY: `head <= HUGE_PAGE`, so both trimmed parts lie in the mapping made above, and
    // the advice is on pages of what remains. Refused advice leaves plain pages.
    unsafe {
        if head > 0 {
            libc::munmap(raw.cast(), head);
        }
        if HUGE_PAGE - head > 0 {
            libc::munmap(raw.add(head + len).cast(), HUGE_PAGE - head);
        }
        let start = raw.add(head);
        libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE);
        start
    }
}

/// Unmaps what [`map`] returned for `len`.
///
/// # Safety
/// `ptr` came from `map(len)` and is not used after.
pub(crate) unsafe fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: the caller's promise.
    unsafe { libc::munmap(ptr.cast(), mapped_len(len)) };
}

fn mapped_len(len: usize) -> usize {
    len.next_multiple_of(4096)
}

/// The system allocator, except that allocations of a [`HUGE_PAGE`] and more get a mapping
/// of their own from `map` (the allocator would otherwise carve them from its heaps, in
/// plain pages at no particular alignment). The daemon's `#[global_allocator]`.
pub struct HugeAlloc;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE_PAGE && layout.align() <= HUGE_PAGE
}

// SAFETY: every block comes from `System` or `map` by the same test of its layout, which
// `dealloc` and `realloc` repeat to give it back to where it came from.
unsafe impl GlobalAlloc for HugeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            map(layout.size())
        } else {
            // SAFETY: the caller's layout, as `GlobalAlloc` requires.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            map(layout.size()) // fresh mappings are zero
        } else {
            // SAFETY: as `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: allocated by `map` for this size (the same test in `alloc`).
            unsafe { unmap(ptr, layout.size()) }
        } else {
            // SAFETY: allocated by `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc`'s contract: `new_size`, rounded to the alignment,
        // does not overflow.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new) {
            // SAFETY: allocated by `System` with `layout`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: as `alloc`; the copy stays within both blocks.
        unsafe {
            let moved = self.alloc(new);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `AnonHugePages` of the mapping that holds `at`, from `/proc/self/smaps`.
    fn anon_huge_pages(at: *const u8) -> Option<String> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut lines = smaps.lines();
        while let Some(line) = lines.next() {
            let range = line.split(' ').next().unwrap_or_default();
            let Some((lo, hi)) = range.split_once('-') else {
                continue;
            };
            let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16)) else {
                continue;
            };
            if (lo..hi).contains(&(at as usize)) {
                let huge = lines.find_map(|l| l.strip_prefix("AnonHugePages:"));
                return huge.map(|h| h.trim().to_string());
            }
        }
        None
    }

    fn thp_allowed() -> bool {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        mode.is_ok_and(|m| !m.contains("[never]"))
    }

    /// Where transparent huge pages may be asked for, a mapping's huge-page-sized part is one
    /// huge page once written; it is zero before, aligned, and unmaps.
    #[test]
    fn mappings_are_aligned_zeroed_huge_pages() {
        let len = HUGE_PAGE + 100;
        let at = map(len);
        assert!(!at.is_null());
        assert_eq!(at as usize % HUGE_PAGE, 0);
        // SAFETY: `len` bytes mapped at `at`, used only here.
        let bytes = unsafe { std::slice::from_raw_parts_mut(at, len) };
        assert!(bytes.iter().all(|b| *b == 0));
        bytes.fill(1);
        if thp_allowed() {
            assert_eq!(anon_huge_pages(at).as_deref(), Some("2048 kB"));
        }
        // SAFETY: from `map(len)`, not used after.
        unsafe { unmap(at, len) };
        assert_eq!(anon_huge_pages(at), None, "still mapped");
    }

    /// Blocks of either kind allocate, grow across the threshold both ways, keep their bytes,
    /// and free.
    #[test]
    fn the_allocator_moves_blocks_between_kinds() {
        let alloc = HugeAlloc;
        let small = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: non-zero layouts; each block is freed with the layout it has then.
        unsafe {
            let p = alloc.alloc(small);
            std::ptr::write_bytes(p, 7, 1000);
            let p = alloc.realloc(p, small, 3 << 20);
            assert_eq!(p as usize % HUGE_PAGE, 0, "grown into a mapping");
            assert!(std::slice::from_raw_parts(p, 1000).iter().all(|b| *b == 7));
            let big = Layout::from_size_align(3 << 20, 8).unwrap();
            let p = alloc.realloc(p, big, 500);
            assert!(std::slice::from_raw_parts(p, 500).iter().all(|b| *b == 7));
            alloc.dealloc(p, Layout::from_size_align(500, 8).unwrap());
            let z = alloc.alloc_zeroed(big);
            assert!(std::slice::from_raw_parts(z, 3 << 20).iter().all(|b| *b == 0));
            alloc.dealloc(z, big);
        }
    }
}
