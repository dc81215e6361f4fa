//! What a table costs in memory: the bytes a compiled table keeps alive per path rule, on the
//! corpora of the `scale` bench (100 to 10 000 Ingresses, and 100 000 with
//! `INGRESS_ROUTER_MEMORY_100K=1`), counted with a global allocator.
//!
//! The table is measured as `Snapshot::build` gives it: the `RouteTable` and the TLS names of
//! the same Ingresses (a `TlsTable`), which the `RouteTable` held itself before the two were
//! split, so the bound still covers both.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ingress_router::{Snapshot, TableOptions};

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

/// The bytes a table of the `size`-Ingress corpus keeps alive per path, printed with the
/// corpus's counts.
fn bytes_per_path(size: usize) -> f64 {
    let corpus = corpus::generate(size, corpus::SEED);
    let stats = corpus.stats();

    let before = LIVE.load(Ordering::SeqCst);
    let table = Snapshot::build(&corpus.ingresses, TableOptions::default());
    let after = LIVE.load(Ordering::SeqCst);

    let bytes = after.saturating_sub(before);
    let per_path = bytes as f64 / stats.paths as f64;
    println!(
        "{} Ingresses, {} hosts, {} paths ({} rules routed): table keeps {bytes} bytes alive, \
         {per_path:.1} bytes per path",
        stats.ingresses,
        stats.hosts,
        stats.paths,
        table.routes().rule_count()
    );
    // The input stays alive through the measurement: only the table's own memory is counted.
    drop(table);
    drop(corpus);
    per_path
}

// One test, so that nothing else allocates while a table is measured: the counter is global.
#[test]
fn a_table_keeps_at_most_512_bytes_per_path_alive() {
    // Ten Ingresses: fixed costs (the host index shards, the hasher) count for more, but stay
    // small.
    let per_path = bytes_per_path(10);
    assert!(
        per_path <= 2.0 * MAX_BYTES_PER_PATH,
        "10 Ingresses: {per_path:.1}"
    );
    // 100 000 takes a while without optimisations; `INGRESS_ROUTER_MEMORY_100K=1` adds it.
    let mut sizes = vec![100, 1_000, 10_000];
    if std::env::var_os("INGRESS_ROUTER_MEMORY_100K").is_some() {
        sizes.push(100_000);
    }
    for size in sizes {
        let per_path = bytes_per_path(size);
        assert!(
            per_path <= MAX_BYTES_PER_PATH,
            "{size} Ingresses: {per_path:.1} bytes per path, more than {MAX_BYTES_PER_PATH}"
        );
    }
}
