//! The results site: the store as static HTML pages that open from disk, with no server, no
//! external URL and no script needed for reading (a little hand-written JS filters and sorts
//! the runs list).
//!
//! ```text
//! index.html              every table, paper vs reproduced, and a summary line
//! tables/<stem>.html      one table: figures, the runs behind each cell, manifest, LaTeX
//! runs.html, runs-N.html  every run, 500 to a page; runs.js holds them all for the filters
//! runs/<id>.html          one run: config by layer, provenance, metrics, curves, κ/λ
//! assets/                 style.css, site.js
//! ```

mod run_page;
mod runs;

pub use runs::PAGE_SIZE as RUNS_PAGE_SIZE;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::figures::{self, representatives, CurveComparison, Curves, KappaLambda, LearnedCurves};
use super::stats::Verdict;
use super::{file_stem, table_from_store, RenderError, TableModel, Templates};
use crate::config::LoadedManifest;
use crate::result::RunStatus;
use crate::store::{RunSummary, Store};

/// Runs read from the store at a time for their pages: few statements, bounded memory.
const READ_CHUNK: usize = 500;

const STYLE: &str = include_str!("../../../templates/site/style.css");
const SCRIPT: &str = include_str!("../../../templates/site/site.js");

/// What the site is built from.
pub struct SiteInput<'a> {
    pub store: &'a Store,
    /// The tables to show, as `repro render` picks them.
    pub tables: &'a [(LoadedManifest, String)],
    /// Every manifest on disk: a run's page names the layer that set each config key.
    pub manifests: &'a [LoadedManifest],
    /// Only runs of these profiles (every run when empty).
    pub profiles: &'a [String],
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    pub index: PathBuf,
    pub tables: usize,
    pub runs: usize,
    pub pages: usize,
    /// Run pages drawn this time; the others were up to date.
    pub redrawn: usize,
}

/// Counts for the index's summary line.
#[derive(Debug, Clone, Default, Serialize)]
struct Summary {
    tables: usize,
    runs: usize,
    by_status: BTreeMap<String, usize>,
    /// Cells with a paper number and a reproduced mean, by verdict.
    compared: usize,
    within_noise: usize,
    within_tolerance: usize,
    off: usize,
    no_noise_estimate: usize,
}

#[derive(Debug, Serialize)]
struct TableEntry {
    table: TableModel,
    href: String,
}

#[derive(Debug, Serialize)]
struct Figure {
    title: String,
    /// What the figure shows, for screen readers.
    alt: String,
    svg: String,
}

/// The folder layout: where each page lives, and how a page links to another.
fn table_href(table: &TableModel) -> String {
    format!("tables/{}.html", file_stem(&table.id, &table.profile))
}

fn run_href(id: &str) -> String {
    format!("runs/{id}.html")
}

/// Builds the site into `out` (created if needed; the pages of an earlier build are replaced,
/// and those it no longer has are removed).
pub fn build_site(input: &SiteInput, templates: &Templates, out: &Path) -> Result<SiteReport, RenderError> {
    for dir in ["tables", "runs", "assets"] {
        let dir = out.join(dir);
        std::fs::create_dir_all(&dir).map_err(|source| RenderError::Io {
            path: out.to_path_buf(),
            source,
        })?;
    }
    write(&out.join("assets/style.css"), STYLE)?;
    write(&out.join("assets/site.js"), SCRIPT)?;
    let runs: Vec<RunSummary> = input
        .store
        .run_summaries()?
        .into_iter()
        .filter(|r| {
            input.profiles.is_empty() || r.members.iter().any(|m| input.profiles.contains(&m.profile))
        })
        .collect();
    let tables = input
        .tables
        .iter()
        .map(|(m, profile)| table_from_store(input.store, m, profile))
        .collect::<Result<Vec<_>, _>>()?;
    let table_pages: BTreeMap<(String, String), String> = tables
        .iter()
        .map(|t| ((t.id.clone(), t.profile.clone()), table_href(t)))
        .collect();
    let summary = summary(&tables, &runs);
    let mut pages = 0;
    for ((m, profile), table) in input.tables.iter().zip(&tables) {
        let figures = table_figures(input.store, m, profile)?;
        let latex = templates.render("table.compact.tex.j2", table)?;
        let html = templates.render_context(
            "site/table.html.j2",
            minijinja::context! {
                root => "../",
                title => format!("{} ({})", table.title, table.profile),
                table => Serde(table),
                figures => Serde(&figures),
                latex,
                manifest_path => m.source(),
                manifest_yaml => m.text.as_str(),
            },
        )?;
        write(&out.join(table_href(table)), &html)?;
        pages += 1;
    }
    let (reproduced, unsupported): (Vec<TableEntry>, Vec<TableEntry>) = tables
        .into_iter()
        .map(|table| TableEntry {
            href: table_href(&table),
            table,
        })
        .partition(|e| e.table.unsupported.is_none());
    let index = out.join("index.html");
    let html = templates.render_context(
        "site/index.html.j2",
        minijinja::context! {
            root => "",
            title => "Results",
            summary => Serde(&summary),
            reproduced => Serde(&reproduced),
            unsupported => Serde(&unsupported),
        },
    )?;
    write(&index, &html)?;
    pages += 1;
    let runs_pages = runs::write_runs_pages(templates, &runs, &table_pages, out)?;
    pages += runs_pages;
    let by_id: BTreeMap<&str, &LoadedManifest> = input
        .manifests
        .iter()
        .map(|m| (m.manifest.id.as_str(), m))
        .collect();
    let before = Built::read(out);
    let build = build_identity(templates);
    let now = Built(
        runs.iter()
            .filter_map(|r| Some((r.id.clone(), page_inputs(r, &build, &by_id, &table_pages)?)))
            .collect(),
    );
    let redraw: Vec<&RunSummary> = runs
        .iter()
        .filter(|r| {
            now.0.get(&r.id).is_none_or(|h| before.0.get(&r.id) != Some(h))
                || !out.join(run_href(&r.id)).is_file()
        })
        .collect();
    // Read a chunk of runs in a few statements, then draw its pages in parallel: one query per
    // run and table cost more than all the drawing.
    for chunk in redraw.chunks(READ_CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
        let details = input.store.run_details(&ids)?;
        chunk
            .par_iter()
            .zip(details)
            .map(|(r, detail)| {
                let page = run_page::RunPage::build(detail, r, &by_id, &table_pages)?;
                let html = templates.render_context("site/run.html.j2", page.context())?;
                write(&out.join(run_href(&r.id)), &html)
            })
            .collect::<Result<Vec<()>, RenderError>>()?;
    }
    now.write(out)?;
    pages += runs.len();
    let kept: HashSet<String> = table_pages
        .values()
        .cloned()
        .chain(runs.iter().map(|r| run_href(&r.id)))
        .chain((1..=runs_pages).map(runs::page_file))
        .collect();
    remove_stale_pages(out, &kept)?;
    Ok(SiteReport {
        index,
        tables: input.tables.len(),
        runs: runs.len(),
        pages,
        redrawn: redraw.len(),
    })
}

/// What each run page of the site was drawn from (a digest per run id), kept in the site's
/// folder so that a rebuild redraws only the pages whose inputs changed.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
struct Built(BTreeMap<String, String>);

const BUILT_FILE: &str = ".repro-site.json";

impl Built {
    /// A missing or unreadable record means every page is drawn again, which is always right.
    fn read(out: &Path) -> Self {
        std::fs::read(out.join(BUILT_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write(&self, out: &Path) -> Result<(), RenderError> {
        write(&out.join(BUILT_FILE), &serde_json::to_string(self)?)
    }
}

/// The program and templates that draw the pages: another build of `repro`, or an edited
/// template of `--templates`, redraws every page.
fn build_identity(templates: &Templates) -> String {
    let exe = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| format!("{:?} {}", m.modified().ok(), m.len()))
        .unwrap_or_default();
    format!("{} {exe} {}", env!("CARGO_PKG_VERSION"), templates.identity())
}

/// The digest of everything a run's page shows: the run as listed (status, attempt, times,
/// error, memberships), the manifests it belongs to (its config's layers) and which table pages
/// exist. A run still pending or running changes with every epoch: never reused.
fn page_inputs(
    r: &RunSummary,
    build: &str,
    manifests: &BTreeMap<&str, &LoadedManifest>,
    table_pages: &BTreeMap<(String, String), String>,
) -> Option<String> {
    if matches!(r.status, RunStatus::Pending | RunStatus::Running) {
        return None;
    }
    let mut h = Sha256::new();
    h.update(build.as_bytes());
    h.update(serde_json::to_vec(r).ok()?);
    for m in &r.members {
        h.update(
            manifests
                .get(m.manifest.as_str())
                .map_or("", |m| m.text.as_str())
                .as_bytes(),
        );
        let page = table_pages.get(&(m.manifest.clone(), m.profile.clone()));
        h.update(page.map_or("", String::as_str).as_bytes());
    }
    Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Deletes the pages of an earlier build that this one did not write (a removed run, a table no
/// longer shown, a runs page past the last), so that no page is left behind showing what the
/// store no longer has; any other file in the folder is left alone.
fn remove_stale_pages(out: &Path, kept: &HashSet<String>) -> Result<(), RenderError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Io { path, source }
    };
    let is_page = |folder: &str, name: &str| match folder {
        "" => name
            .strip_prefix("runs-")
            .and_then(|n| n.strip_suffix(".html"))
            .is_some_and(|n| n.parse::<usize>().is_ok()),
        _ => name.ends_with(".html"),
    };
    for folder in ["", "tables", "runs"] {
        let dir = out.join(folder);
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let rel = if folder.is_empty() {
                name.to_string()
            } else {
                format!("{folder}/{name}")
            };
            if path.is_file() && is_page(folder, name) && !kept.contains(&rel) {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), RenderError> {
    std::fs::write(path, text).map_err(|source| RenderError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn summary(tables: &[TableModel], runs: &[RunSummary]) -> Summary {
    let mut s = Summary {
        tables: tables.len(),
        runs: runs.len(),
        ..Summary::default()
    };
    for r in runs {
        *s.by_status.entry(r.status.to_string()).or_default() += 1;
    }
    for cell in tables.iter().flat_map(|t| &t.rows).flat_map(|r| &r.cells) {
        let Some(v) = &cell.verdict else { continue };
        s.compared += 1;
        *match v {
            Verdict::WithinNoise { .. } => &mut s.within_noise,
            Verdict::WithinTolerance => &mut s.within_tolerance,
            Verdict::Off { .. } => &mut s.off,
            Verdict::NoNoiseEstimate => &mut s.no_noise_estimate,
        } += 1;
    }
    s
}

/// A table's figures: its rows' learning curves on one plot, and their learned κ and λ.
fn table_figures(store: &Store, m: &LoadedManifest, profile: &str) -> Result<Vec<Figure>, RenderError> {
    let runs = store.manifest_runs(&m.manifest.id, profile)?;
    let reps = representatives(&runs, &super::table::table_stage(m));
    let mut curves = Vec::new();
    let mut learned = Vec::new();
    for (label, run) in &reps {
        let result = store.result(&run.run_id)?;
        let c = Curves::of(&result);
        if !c.is_empty() {
            curves.push((label.clone(), c));
        }
        let kinds = LearnedCurves::by_kind(&result.learned);
        if !kinds.is_empty() {
            learned.push((label.clone(), kinds));
        }
    }
    let mut out = Vec::new();
    let drawn = |e: String| RenderError::Figure {
        path: PathBuf::from(format!("{} ({profile}) in the site", m.manifest.id)),
        message: e,
    };
    if !curves.is_empty() {
        let comparison = CurveComparison { runs: &curves };
        let evaluated = comparison.evaluated().0;
        out.push(Figure {
            title: "Learning curves".into(),
            alt: format!(
                "{}{} and train loss per epoch of {} rows (lowest finished seed of each)",
                evaluated[..1].to_uppercase(),
                &evaluated[1..],
                curves.len()
            ),
            svg: figures::svg(&comparison).map_err(drawn)?,
        });
    }
    if !learned.is_empty() {
        out.push(Figure {
            title: "Learned κ and λ per layer".into(),
            alt: format!("Learned kappa and lambda per layer of {} rows", learned.len()),
            svg: figures::svg(&KappaLambda { runs: &learned }).map_err(drawn)?,
        });
    }
    Ok(out)
}
