//! Memory in transparent huge pages, for the direct-read scratch buffers.
//!
//! A direct read into 4 KiB pages goes to the disk as one request per 254 pages (the queue's
//! segment limit, about 1 MiB), where a huge page is one: `fio` read a host-cached disk at
//! 2.1–2.6 GB/s into huge pages against 0.9–1.2 GB/s into 4 KiB pages, and `engine_depth`
//! 1.6–1.9 GB/s against 0.9–1.1.
//!
//! With transparent huge pages off (or `never`), the memory is plain pages and works the
//! same, only slower.

/// The huge page size of x86-64 and most arm64 kernels; the alignment asked of mappings.
const HUGE_PAGE: usize = 2 << 20;

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
    /// huge page once written; it is zero before, and aligned.
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
    }
}
