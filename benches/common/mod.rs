//! Timing helpers shared by the benches.

use std::time::Duration;

/// The median of `reps` runs after `warmup` untimed ones; `run` returns its own duration.
pub fn median(warmup: usize, reps: usize, mut run: impl FnMut() -> Duration) -> Duration {
    for _ in 0..warmup {
        run();
    }
    let mut times: Vec<Duration> = (0..reps).map(|_| run()).collect();
    times.sort();
    times[reps / 2]
}

/// One line: a name, a time in ms and its ratio to `baseline`.
pub fn report(name: &str, time: Duration, baseline: Duration) {
    println!(
        "  {name:<22} {:>8.1} ms   {:>5.2}x",
        time.as_secs_f64() * 1e3,
        time.as_secs_f64() / baseline.as_secs_f64()
    );
}
