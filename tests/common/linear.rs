//! Timing tests that compare two input sizes instead of a wall-clock deadline, shared by the
//! test files that check for linear time.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The tests of a file that time themselves run one at a time, so that their timings do not
/// skew each other's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `work` on an input `n` times larger (`n` ≥ 4) takes less than `2.5 n` times as long:
/// linear is `n`, quadratic `n²`. Best of five runs each, interleaved; `work` runs `repeat`
/// times per measurement so that even a fast rejection takes measurable time.
pub fn assert_linear(what: &str, small: &str, large: &str, repeat: usize, work: impl Fn(&str)) {
    let size_ratio = large.len() as f64 / small.len() as f64;
    assert!(size_ratio >= 3.5, "{what}: {size_ratio}");
    let time = |input: &str| {
        let started = Instant::now();
        for _ in 0..repeat {
            work(input);
        }
        started.elapsed()
    };
    let (mut small_time, mut large_time) = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        small_time = small_time.min(time(small));
        large_time = large_time.min(time(large));
    }
    let ratio = large_time.as_secs_f64() / small_time.as_secs_f64().max(1e-6);
    assert!(
        ratio < 2.5 * size_ratio,
        "{what}: {large_time:?} for {} bytes against {small_time:?} for {}: {ratio:.1}×",
        large.len(),
        small.len()
    );
}
