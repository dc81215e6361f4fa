//! What a table costs in memory: the bytes a `RouteTable` keeps alive per path rule, on the
//! 10 000-Ingress corpus of the `scale` bench, counted with a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ingress_router::{RouteTable, TableOptions};

#[path = "../benches/support/corpus.rs"]
#[allow(dead_code)] // The generator's writers and request mixes serve the bench and the example.
mod corpus;

/// The most a table may keep alive per path rule of its input.
const MAX_BYTES_PER_PATH: f64 = 512.0;

/// Forwards to the system allocator and counts the bytes allocated and not yet freed.
struct Counting;

/// Bytes allocated and not yet freed, by every thread.
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_table_keeps_at_most_512_bytes_per_path_alive() {
    let corpus = corpus::generate(10_000, corpus::SEED);
    let stats = corpus.stats();

    let before = LIVE.load(Ordering::SeqCst);
    let table = RouteTable::build(&corpus.ingresses, TableOptions::default());
    let after = LIVE.load(Ordering::SeqCst);

    let bytes = after.saturating_sub(before);
    let per_path = bytes as f64 / stats.paths as f64;
    println!(
        "{} Ingresses, {} hosts, {} paths ({} rules routed): table keeps {bytes} bytes alive, \
         {per_path:.1} bytes per path",
        stats.ingresses,
        stats.hosts,
        stats.paths,
        table.rule_count()
    );
    assert!(
        per_path <= MAX_BYTES_PER_PATH,
        "{per_path:.1} bytes per path, more than {MAX_BYTES_PER_PATH}"
    );
    // The input stays alive through the measurement: only the table's own memory is counted.
    drop(table);
    drop(corpus);
}
