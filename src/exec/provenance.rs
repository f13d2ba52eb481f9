//! Who, where and with what code a run ran. The code revision is the binary's, recorded at
//! build time, not that of the folder the run happens to start in.

use crate::store::{Holder, Provenance};

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Collected once per process. `extra_versions` lets the binary add e.g. the Burn version and
/// backend.
pub fn collect(extra_versions: &[(&str, &str)]) -> Provenance {
    // Recorded by build.rs when the binary was built from a git checkout; a dirty flag is only
    // as fresh as the last build (cargo rebuilds when the index changes).
    let git_rev = option_env!("REPRO_GIT_REV").map(str::to_string);
    let dirty = option_env!("REPRO_GIT_DIRTY").map(|d| d == "true");
    let mut versions = serde_json::Map::new();
    versions.insert("repro".into(), env!("CARGO_PKG_VERSION").into());
    versions.insert("code_version".into(), crate::plan::CODE_VERSION.into());
    for (k, v) in extra_versions {
        versions.insert((*k).into(), (*v).into());
    }
    Provenance {
        host: hostname(),
        git_rev,
        dirty,
        versions: serde_json::Value::Object(versions).to_string(),
        // A database password given on the command line is not kept with every run.
        command: std::env::args()
            .map(|a| crate::store::redacted(&a))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Whether a local process still exists (Linux: /proc; elsewhere assume it does, and rely on
/// heartbeats).
pub fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Why a run marked running is taken to be abandoned; see [`staleness`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stale {
    /// Its process is gone from this host.
    Gone(u32),
    /// Its owner (on another host, or unknown) has not sent a heartbeat for this many seconds.
    Silent(f64),
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Gone(pid) => write!(f, "process {pid} is gone"),
            Stale::Silent(s) if s.is_finite() => write!(f, "no heartbeat for {s:.0} s"),
            Stale::Silent(_) => write!(f, "no heartbeat ever"),
        }
    }
}

/// The rule by which a sweep takes over another process's run: at once when that process was
/// on this host and is gone, otherwise after `stale_after_s` without a heartbeat.
pub fn staleness(holder: &Holder, stale_after_s: f64) -> Option<Stale> {
    if let Some((host, pid)) = holder.host_pid() {
        if host == hostname() && !pid_alive(pid) {
            return Some(Stale::Gone(pid));
        }
    }
    let silent = holder.silent_for_s();
    (silent >= stale_after_s).then_some(Stale::Silent(silent))
}
