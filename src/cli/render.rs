//! `repro render`, and the table printed at the end of `repro run` / `repro sweep`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Args;

use super::common::DbArg;
use repro::config::load::{check_profile, load_all, ManifestKind};
use repro::config::manifest::PAPER_PROFILE;
use repro::config::{find_manifest, LoadedManifest};
use repro::render::figures::render_figures;
use repro::render::{file_stem, table_from_store, write_table, Format, RenderError, Templates};
use repro::store::Store;

/// Where tables and figures go unless told otherwise.
pub const TABLES_DIR: &str = "results/tables";
pub const FIGURES_DIR: &str = "results/figures";

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Manifests to render, by id or path (default: every manifest with results in the store,
    /// and every `unsupported` one, which shows the paper's numbers)
    pub names: Vec<String>,
    /// Only this profile (default: each profile the store has runs for; `paper` if none)
    #[arg(long)]
    pub profile: Option<String>,
    /// Output formats, comma-separated; md and latex write a full and a compact variant
    #[arg(long, value_enum, value_delimiter = ',', default_value = "md,latex")]
    pub format: Vec<Format>,
    /// Folder for the tables
    #[arg(long, default_value = TABLES_DIR)]
    pub out: PathBuf,
    /// Folder whose templates replace the built-in ones of the same name (table.md.j2,
    /// table.tex.j2, table.compact.md.j2, table.compact.tex.j2)
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Also render this template of the --templates folder (repeatable): `table.html.j2`
    /// writes `<table>.html`; `.md`, `.tex` and `.html` templates escape values accordingly
    #[arg(long = "template", value_name = "NAME.j2")]
    pub custom: Vec<String>,
    /// Also draw the figures (PNG and SVG) of each manifest's runs
    #[arg(long)]
    pub figures: bool,
    /// Folder for the figures (one subfolder per table)
    #[arg(long, default_value = FIGURES_DIR)]
    pub figures_out: PathBuf,
    /// Folder holding the manifests (sweeps in its sweeps/ subfolder)
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    #[command(flatten)]
    pub db: DbArg,
}

pub fn cmd_render(args: RenderArgs) -> anyhow::Result<()> {
    let templates = Templates::new(args.templates.as_deref())?;
    let store = args.db.open_read_only()?;
    let profiles: Vec<String> = args.profile.iter().cloned().collect();
    let targets = targets(&args.names, &profiles, &args.experiments, &store)?;
    if targets.is_empty() {
        println!("nothing to render: no manifest with a table has results in the store");
        return Ok(());
    }
    for (m, profile) in &targets {
        let table = table_from_store(&store, m, profile)?;
        let written = write_table(&templates, &table, &args.format, &args.custom, &args.out)?;
        println!(
            "{} ({profile}): {}/{} cells complete -> {}",
            m.manifest.id,
            table.cells_complete,
            table.cells_total,
            paths(&written)
        );
        if args.figures {
            let dir = args.figures_out.join(file_stem(&m.manifest.id, profile));
            let report = render_figures(&store, m, profile, &dir)?;
            if !report.written.is_empty() {
                println!("  figures: {}", paths(&report.written));
            }
            for note in &report.skipped {
                println!("  skipped: {note}");
            }
        }
    }
    Ok(())
}

fn paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// (manifest, profile) pairs to render: the named manifests (every one with a table and results
/// in the store, and every unsupported one, when none is named), under `profiles` (each profile
/// the store has runs for when empty).
pub fn targets(
    names: &[String],
    profiles: &[String],
    experiments: &Path,
    store: &Store,
) -> anyhow::Result<Vec<(LoadedManifest, String)>> {
    let summaries = store.manifest_summaries()?;
    let stored_profiles = |id: &str| -> Vec<String> {
        summaries
            .iter()
            .filter(|s| s.manifest == id)
            .map(|s| s.profile.clone())
            .collect()
    };
    let mut out = Vec::new();
    if !names.is_empty() {
        for name in names {
            let m = find_manifest(experiments, name, ManifestKind::Any)?;
            if m.manifest.table.is_none() {
                return Err(RenderError::NoTable(m.manifest.id.clone()).into());
            }
            let chosen = match profiles {
                [] => {
                    let stored = stored_profiles(&m.manifest.id);
                    if stored.is_empty() {
                        vec![PAPER_PROFILE.to_string()]
                    } else {
                        stored
                    }
                }
                wanted => {
                    for p in wanted {
                        check_profile(&m, p)?;
                    }
                    wanted.to_vec()
                }
            };
            out.extend(chosen.into_iter().map(|p| (m.clone(), p)));
        }
        return Ok(out);
    }
    let mut seen = BTreeSet::new();
    for (file, loaded) in load_all(experiments, ManifestKind::Any) {
        // An unusable manifest is reported by `repro list`; render goes on with the others.
        let m = match loaded {
            Ok(m) => m,
            Err(e) => {
                eprintln!("skipping {}: {e}", file.display());
                continue;
            }
        };
        if m.manifest.table.is_none() || !seen.insert(m.manifest.id.clone()) {
            continue;
        }
        let mut stored = stored_profiles(&m.manifest.id);
        if stored.is_empty() && m.manifest.unsupported.is_some() {
            stored.push(PAPER_PROFILE.to_string());
        }
        for p in stored {
            if profiles.is_empty() || profiles.contains(&p) {
                out.push((m.clone(), p));
            }
        }
    }
    Ok(out)
}

/// After `repro run`: writes the manifest's Markdown and LaTeX tables and returns the full
/// Markdown table for printing; `None` for a manifest without a table.
pub fn render_after_run(
    store: &Store,
    m: &LoadedManifest,
    profile: &str,
    out_dir: &Path,
) -> Result<Option<String>, RenderError> {
    if m.manifest.table.is_none() {
        return Ok(None);
    }
    let templates = Templates::new(None)?;
    let table = table_from_store(store, m, profile)?;
    write_table(&templates, &table, &[Format::Md, Format::Latex], &[], out_dir)?;
    Ok(Some(templates.render("table.md.j2", &table)?))
}
