//! CPU device-time metering: the CPU time of the threads that did a job's work.
//!
//! The runtime meters each job as CPU time, not wall time, so that a job is not billed for
//! time its threads spent descheduled. The engine thread that calls
//! [`crate::generate::generate`] (or [`crate::score::score`]) is measured with
//! [`thread_cpu_time`]; but each forward on our CPU kernels ([`crate::cpu`]) also runs on
//! scoped worker threads that exit at the end of the forward, taking their CPU time with
//! them. So each worker reads its own CPU time just before it returns, and the forward
//! adds the sum to a counter of the thread that called it ([`worker_cpu_time`]).
//! [`job_cpu_time`] is the two together: take it before and after a job on the same thread
//! and the difference is the job's CPU time.
//!
//! Not counted: models that run on candle's ops (types other than `Q4_1`/`Q8_0`,
//! `Weights::DequantizedF32`, safetensors, CUDA) compute on candle's rayon pool, whose
//! threads are long-lived and shared, so their time cannot be attributed to one job; only
//! the calling thread's own time is counted there. GPU time is not CPU time and is not
//! counted either.
//!
//! Platforms: `CLOCK_THREAD_CPUTIME_ID` on Linux, Android, macOS, iOS and FreeBSD. Elsewhere
//! [`thread_cpu_time`] returns `Duration::ZERO` (so every difference is zero: callers must
//! fall back on wall time there).

use std::cell::Cell;
use std::time::Duration;

thread_local! {
    /// CPU time of forward workers spawned by this thread, added as they finish.
    static WORKER_CPU: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// CPU time consumed so far by the calling thread (user + system).
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
))]
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU time consumed so far by the calling thread: not available on this platform, so
/// always `Duration::ZERO`.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
pub fn thread_cpu_time() -> Duration {
    Duration::ZERO
}

/// Total CPU time of the forward worker threads spawned by the calling thread so far
/// (monotonic; starts at zero for each thread).
pub fn worker_cpu_time() -> Duration {
    WORKER_CPU.with(Cell::get)
}

/// The calling thread's own CPU time plus that of its forward workers
/// ([`thread_cpu_time`] + [`worker_cpu_time`]). The difference between two readings on
/// the same thread is the CPU time of the work done in between.
pub fn job_cpu_time() -> Duration {
    thread_cpu_time() + worker_cpu_time()
}

/// Adds finished workers' CPU time to the calling thread's counter.
pub(crate) fn add_worker_cpu_time(d: Duration) {
    WORKER_CPU.with(|c| c.set(c.get().saturating_add(d)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn thread_cpu_time_advances_with_work() {
        let before = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time() > before);
    }

    #[test]
    fn worker_counter_is_per_thread() {
        add_worker_cpu_time(Duration::from_millis(5));
        assert!(worker_cpu_time() >= Duration::from_millis(5));
        let other = std::thread::spawn(worker_cpu_time).join().unwrap();
        assert_eq!(other, Duration::ZERO);
    }
}
