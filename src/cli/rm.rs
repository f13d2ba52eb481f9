//! `repro rm`: delete runs and their dependants, after confirmation.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use super::common::DbArg;
use repro::config::ConfigError;
use repro::result::RunStatus;
use repro::store::Store;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Run ids (unique prefixes are enough)
    pub runs: Vec<String>,
    /// Instead: every run of this manifest id (under --profile)
    #[arg(long)]
    pub manifest: Option<String>,
    #[arg(long, default_value = repro::config::manifest::PAPER_PROFILE)]
    pub profile: String,
    /// With --manifest: only runs in this status (pending, running, done, failed, diverged,
    /// interrupted)
    #[arg(long)]
    pub status: Option<RunStatus>,
    /// Do not ask
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn cmd_rm(args: RmArgs) -> anyhow::Result<()> {
    if args.runs.is_empty() == args.manifest.is_none() {
        return Err(ConfigError::Usage("give run ids or --manifest, not both".into()).into());
    }
    let store = args.db.open_existing()?;
    let ids: Vec<String> = match &args.manifest {
        Some(manifest) => {
            check_stored(&store, manifest, &args.profile)?;
            store
                .manifest_runs(manifest, &args.profile)?
                .into_iter()
                .filter(|r| args.status.is_none_or(|s| r.status == s))
                .map(|r| r.run_id)
                .collect()
        }
        None => args
            .runs
            .iter()
            .map(|p| store.resolve_prefix(p))
            .collect::<Result<_, _>>()?,
    };
    if ids.is_empty() {
        println!("nothing to remove");
        return Ok(());
    }
    if !args.yes
        && !confirm(&format!(
            "remove {} runs and every run that depends on them?",
            ids.len()
        ))?
    {
        println!("nothing removed");
        return Ok(());
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let removed = store.remove(&refs)?;
    for (id, files) in &removed {
        remove_run_folders(id, files);
    }
    println!("removed {} runs", removed.len());
    Ok(())
}

/// Deletes the folders a removed run's files are in (its checkpoint, its fake-trainer log …),
/// so that running it again trains it from the start instead of finding a finished checkpoint.
/// Only folders named after the run are deleted: an artifact elsewhere is left alone.
fn remove_run_folders(id: &str, files: &[std::path::PathBuf]) {
    let folders: std::collections::BTreeSet<&std::path::Path> = files
        .iter()
        .filter_map(|f| f.parent())
        .filter(|dir| dir.file_name().is_some_and(|n| n == id))
        .collect();
    for dir in folders {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            eprintln!(
                "warning: run {id} is removed, but its folder {} could not be: {e}",
                dir.display()
            );
        }
    }
}

/// A manifest/profile the store has no runs for is a typo, not "nothing to remove".
fn check_stored(store: &Store, manifest: &str, profile: &str) -> anyhow::Result<()> {
    let summaries = store.manifest_summaries()?;
    if summaries
        .iter()
        .any(|s| s.manifest == manifest && s.profile == profile)
    {
        return Ok(());
    }
    let profiles: Vec<&str> = summaries
        .iter()
        .filter(|s| s.manifest == manifest)
        .map(|s| s.profile.as_str())
        .collect();
    let message = if profiles.is_empty() {
        let known: Vec<&str> = summaries.iter().map(|s| s.manifest.as_str()).collect();
        format!(
            "the store has no runs of manifest `{manifest}` (it has: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    } else {
        format!(
            "the store has no runs of `{manifest}` under profile `{profile}` (it has: {}); pass --profile",
            profiles.join(", ")
        )
    };
    Err(ConfigError::Usage(message).into())
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(ConfigError::Usage(
            "refusing to delete without a terminal to confirm on; pass --yes".into(),
        )
        .into());
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
