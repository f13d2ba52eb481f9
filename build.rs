//! Records the git revision the binary is built from and the Burn release Cargo.lock pins, so
//! every run's provenance names the code that produced it, wherever the binary is run from.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The version Cargo.lock resolves package `name` to.
fn locked_version(name: &str) -> Option<String> {
    let lock = std::fs::read_to_string("Cargo.lock").ok()?;
    let entry = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&entry)? + entry.len();
    let len = lock[start..].find('"')?;
    Some(lock[start..start + len].to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let burn = locked_version("burn").unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=REPRO_BURN_VERSION={burn}");
    // A commit moves HEAD or the branch it points to; staging or editing files changes the index.
    for path in [".git/HEAD", ".git/index", ".git/refs/heads"] {
        println!("cargo:rerun-if-changed={path}");
    }
    if let Some(rev) = git(&["rev-parse", "HEAD"]) {
        println!("cargo:rustc-env=REPRO_GIT_REV={rev}");
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        println!("cargo:rustc-env=REPRO_GIT_DIRTY={dirty}");
    }
}
