//! Who, where and with what code a run ran.

use std::process::Command;

use crate::store::Provenance;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

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
    let git_rev = git(&["rev-parse", "HEAD"]);
    let dirty = git_rev
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
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
        command: std::env::args().collect::<Vec<_>>().join(" "),
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
