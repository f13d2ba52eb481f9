//! Ctrl-C (SIGINT), SIGTERM — sent by `timeout`, Slurm, Docker, systemd — and SIGUSR1 (the
//! warning a Slurm job asks for before its time limit) all ask a command to stop after the
//! current batch: runs are checkpointed and marked interrupted, and the
//! process exits 128 + the signal's number (130, 143) with a hint to resume. A second signal
//! exits at once, for a trainer that does not look at the flag — but only a second request:
//! `timeout` (and a shell's Ctrl-C) signal the process and its whole process group, so the one
//! request often arrives twice within microseconds.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The first signal received, 0 before any.
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// When it came, in milliseconds of the monotonic clock.
static FIRST_AT_MS: AtomicI64 = AtomicI64::new(0);
/// Signals this soon after the first are the same request delivered twice.
const REPEAT_WINDOW_MS: i64 = 500;

fn monotonic_ms() -> i64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe and writes only to `t`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec * 1000 + t.tv_nsec / 1_000_000
}

extern "C" fn on_signal(signal: libc::c_int) {
    let now = monotonic_ms();
    if SIGNAL.swap(signal, Ordering::SeqCst) == 0 {
        FIRST_AT_MS.store(now, Ordering::SeqCst);
    } else if now - FIRST_AT_MS.load(Ordering::SeqCst) > REPEAT_WINDOW_MS {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Installs the handler and returns the flag it sets (through a watcher thread: a handler may
/// only touch plain atomics).
pub fn cancellation() -> Arc<AtomicBool> {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: the handler only uses atomics and _exit, both async-signal-safe.
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    std::thread::spawn(move || loop {
        if SIGNAL.load(Ordering::SeqCst) != 0 {
            flag.store(true, Ordering::SeqCst);
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    });
    cancel
}

/// 128 + the signal received (130 for Ctrl-C, 143 for SIGTERM); 130 when none was.
pub fn exit_code() -> i32 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => 128 + libc::SIGINT,
        signal => 128 + signal,
    }
}
