//! Ctrl-C (SIGINT) and SIGTERM — sent by `timeout`, Slurm, Docker, systemd — both ask a command
//! to stop after the current batch: runs are checkpointed and marked interrupted, and the
//! process exits 128 + the signal's number (130, 143) with a hint to resume. A second signal
//! exits at once, for a trainer that does not look at the flag.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The first signal received, 0 before any.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Installs the handler and returns the flag it sets (through a watcher thread: a handler may
/// only touch plain atomics).
pub fn cancellation() -> Arc<AtomicBool> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
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
