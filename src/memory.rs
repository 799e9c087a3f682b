//! Start-up's share of resident memory, handed back once the server is serving.
//!
//! Most of an idle server's resident memory is its own machine code, mapped from the
//! executable and paged in as it runs — in 64 KiB runs around each page touched. Start-up
//! touches code all over the program once (the migrations, the OpenAPI document and the
//! GraphQL schema built from every operation and type, the router): 12 MiB of the 18 MiB of
//! code, of which serving requests then uses about 5. [`release_start_up_code`] unmaps the
//! code pages once start-up is over; what serving needs comes back on first use, from the page
//! cache (a minor fault, no disk read). Only the executable's code (`r-xp`) is released: it is
//! never written, so unmapping loses nothing, unlike the relocated read-only data beside it.
//!
//! The same holds after a burst of work (a recount, a GraphQL explorer session, a backup): once
//! the server has been idle for [`IDLE_AFTER`], the code it ran is released again
//! ([`keep_idle_memory_low`]). The next request pays a few hundred minor page faults — a
//! fraction of a millisecond, once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long after the listener opens start-up's background work (the first key pair, the
/// license check) is over.
const START_UP_SETTLES: Duration = Duration::from_millis(300);
/// How long without a request counts as idle.
pub const IDLE_AFTER: Duration = Duration::from_secs(30);

/// Set by every request, cleared by [`keep_idle_memory_low`] when it looks.
static SERVED: AtomicBool = AtomicBool::new(false);

/// Notes that the server is serving. A load, and a store only when the flag was clear: under
/// load the flag's cache line stays shared between cores instead of moving with every request.
pub fn note_request() {
    if !SERVED.load(Ordering::Relaxed) {
        SERVED.store(true, Ordering::Relaxed);
    }
}

/// Runs for the life of the server: releases the code start-up ran once it is over, and the
/// code a burst of work ran once the server has been idle for [`IDLE_AFTER`].
pub async fn keep_idle_memory_low() {
    tokio::time::sleep(START_UP_SETTLES).await;
    release_start_up_code();
    SERVED.store(false, Ordering::Relaxed);
    let mut served_since_release = false;
    loop {
        tokio::time::sleep(IDLE_AFTER).await;
        let served = SERVED.swap(false, Ordering::Relaxed);
        // Idle for a whole period, after serving something since the last release.
        if !served && served_since_release {
            release_start_up_code();
            served_since_release = false;
        }
        served_since_release |= served;
    }
}

/// Unmaps the executable's code pages from this process (they stay in the page cache).
/// Linux only; elsewhere, or if `/proc` cannot be read, nothing happens.
pub fn release_start_up_code() {
    #[cfg(target_os = "linux")]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return;
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return;
        };
        for (start, end) in code_ranges(&maps, &exe.to_string_lossy()) {
            // SAFETY: the range is a whole mapping of the executable's code, which is mapped
            // private, read-only and executable and never written: MADV_DONTNEED only drops
            // its page-table entries, and the next access maps the same bytes again from the
            // file. No Rust object lives in it.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

/// The address ranges of `exe`'s code mappings (`r-xp`) in a `/proc/self/maps` text.
fn code_ranges(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let permissions = fields.next()?;
            // offset, device, inode, then the path (which may contain spaces).
            let path = fields.skip(3).collect::<Vec<_>>().join(" ");
            if permissions != "r-xp" || path != exe {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::code_ranges;

    #[test]
    fn only_the_executables_code_is_released() {
        let maps = "\
5654689ec000-56546908300 r--p 00000000 fd:01 123 /srv/gitlab license server
565469083000-56546a27f000 r-xp 00697000 fd:01 123 /srv/gitlab license server
56546a27f000-56546a30e000 r--p 0188b000 fd:01 123 /srv/gitlab license server
56546a30e000-56546a317000 rw-p 0191a000 fd:01 123 /srv/gitlab license server
7f0000000000-7f0000100000 r-xp 00000000 fd:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000200000-7f0000300000 rw-p 00000000 00:00 0
";
        assert_eq!(
            code_ranges(maps, "/srv/gitlab license server"),
            vec![(0x5654_6908_3000, 0x5654_6a27_f000)]
        );
    }

    #[test]
    fn releasing_keeps_the_program_running() {
        super::release_start_up_code();
        // Runs code that was unmapped a moment ago.
        assert_eq!(code_ranges("", "x"), Vec::new());
    }
}
