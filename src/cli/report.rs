//! `repro report`: the results site, and the same at the end of `repro run --report`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Args;

use super::common::{print_json, DbArg};
use super::render::targets;
use repro::config::load::{load_all, ManifestKind};
use repro::config::ConfigError;
use repro::render::site::{build_site, SiteInput, SiteReport};
use repro::render::Templates;
use repro::store::Store;

/// Where the site goes unless told otherwise.
pub const SITE_DIR: &str = "results/site";

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Manifests whose tables the site shows, by id or path (default: every manifest with
    /// results in the store, and every `unsupported` one)
    pub names: Vec<String>,
    /// Folder for the site; open its index.html in a browser
    #[arg(long, default_value = SITE_DIR)]
    pub out: PathBuf,
    /// Only these profiles (repeatable; default: every profile the store has runs for)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Folder whose templates replace the built-in ones of the same name (site/index.html.j2,
    /// site/table.html.j2, site/run.html.j2, site/runs.html.j2, site/base.html.j2, …)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Folder holding the manifests (sweeps in its sweeps/ subfolder)
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    #[command(flatten)]
    pub db: DbArg,
    /// Print what was written as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_report(args: ReportArgs) -> anyhow::Result<()> {
    let templates = Templates::new(args.templates.as_deref())?;
    let store = args.db.open_read_only()?;
    let started = std::time::Instant::now();
    let report = write_site(
        &store,
        &templates,
        &args.names,
        &args.profiles,
        &args.experiments,
        &args.out,
    )?;
    if args.json {
        return print_json(&report);
    }
    println!(
        "{} ({} tables, {} runs; {} pages, {} run pages redrawn, in {:.1} s)",
        report.index.display(),
        report.tables,
        report.runs,
        report.pages,
        report.redrawn,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Builds the site of `names` (every table with results when empty) into `out`.
pub fn write_site(
    store: &Store,
    templates: &Templates,
    names: &[String],
    profiles: &[String],
    experiments: &Path,
    out: &Path,
) -> anyhow::Result<SiteReport> {
    let stored: BTreeSet<String> = store
        .manifest_summaries()?
        .into_iter()
        .map(|s| s.profile)
        .collect();
    if let Some(missing) = profiles.iter().find(|p| !stored.contains(*p)) {
        let there = stored.iter().cloned().collect::<Vec<_>>().join(", ");
        return Err(ConfigError::Usage(format!(
            "--profile {missing}: the store has no runs under it (it has: {})",
            if there.is_empty() { "none" } else { &there }
        ))
        .into());
    }
    let tables = targets(names, profiles, experiments, store)?;
    // Manifests that do not load are reported by `repro list`; their runs' pages then say that
    // the layers behind their config are unknown.
    let manifests: Vec<_> = load_all(experiments, ManifestKind::Any)
        .into_iter()
        .filter_map(|(_, m)| m.ok())
        .collect();
    let input = SiteInput {
        store,
        tables: &tables,
        manifests: &manifests,
        profiles,
    };
    Ok(build_site(&input, templates, out)?)
}
