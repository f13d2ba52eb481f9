//! The list of every run: static pages of `PAGE_SIZE` rows that read without a script, and
//! `runs.js`, every run as data, from which the filters and sortable columns redraw the list.
//! A file rather than a fetch: browsers refuse `fetch` of `file://` URLs, not `<script src>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use minijinja::value::Serde;
use serde::Serialize;

use super::{run_href, write, RenderError, Templates};
use crate::plan::labels_text;
use crate::store::RunSummary;

/// Rows per static page: a page of 10,000 runs would be slow to open and to print.
pub const PAGE_SIZE: usize = 500;

#[derive(Debug, Serialize)]
struct RunRow {
    id: String,
    href: String,
    stage: String,
    seed: u64,
    status: String,
    attempt: u32,
    top1: Option<String>,
    wall: Option<String>,
    wall_s: Option<f64>,
    started: Option<String>,
    error: Option<String>,
    members: Vec<MemberCell>,
}

#[derive(Debug, Serialize)]
struct MemberCell {
    manifest: String,
    profile: String,
    labels: String,
    href: Option<String>,
}

fn row(r: &RunSummary, table_pages: &BTreeMap<(String, String), String>) -> RunRow {
    RunRow {
        id: r.id.clone(),
        href: run_href(&r.id),
        stage: r.stage.clone(),
        seed: r.seed,
        status: r.status.to_string(),
        attempt: r.attempt,
        top1: r.top1.map(|v| format!("{v:.2}")),
        wall: r.wall_s.map(wall_text),
        wall_s: r.wall_s,
        started: r.started.clone(),
        error: r.error.clone(),
        members: r
            .members
            .iter()
            .map(|m| MemberCell {
                manifest: m.manifest.clone(),
                profile: m.profile.clone(),
                labels: labels_text(&m.labels),
                href: table_pages.get(&(m.manifest.clone(), m.profile.clone())).cloned(),
            })
            .collect(),
    }
}

/// `42 s`, `12.5 min`, `3.2 h`.
fn wall_text(s: f64) -> String {
    match s {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.1} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

pub(super) fn page_file(page: usize) -> String {
    match page {
        1 => "runs.html".into(),
        n => format!("runs-{n}.html"),
    }
}

#[derive(Debug, Serialize)]
struct PageLink {
    number: usize,
    href: String,
    current: bool,
}

/// Writes runs.html (and runs-2.html … when there are more than `PAGE_SIZE` runs) and
/// runs.js; returns the number of pages written.
pub fn write_runs_pages(
    templates: &Templates,
    runs: &[RunSummary],
    table_pages: &BTreeMap<(String, String), String>,
    out: &Path,
) -> Result<usize, RenderError> {
    let rows: Vec<RunRow> = runs.iter().map(|r| row(r, table_pages)).collect();
    let options = |f: fn(&RunRow) -> Vec<String>| -> Vec<String> {
        rows.iter()
            .flat_map(f)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let manifests = options(|r| r.members.iter().map(|m| m.manifest.clone()).collect());
    let profiles = options(|r| r.members.iter().map(|m| m.profile.clone()).collect());
    let statuses = options(|r| vec![r.status.clone()]);
    let data = serde_json::to_string(&rows)?;
    // `</` cannot end the script early when escaped; JSON reads `<\/` as `</`.
    write(
        &out.join("runs.js"),
        &format!("window.REPRO_RUNS = {};\n", data.replace("</", "<\\/")),
    )?;
    let chunks: Vec<&[RunRow]> = match rows.is_empty() {
        true => vec![&[]],
        false => rows.chunks(PAGE_SIZE).collect(),
    };
    let pages = chunks.len();
    for (i, chunk) in chunks.iter().enumerate() {
        let number = i + 1;
        let links: Vec<PageLink> = (1..=pages)
            .map(|n| PageLink {
                number: n,
                href: page_file(n),
                current: n == number,
            })
            .collect();
        let html = templates.render_context(
            "site/runs.html.j2",
            minijinja::context! {
                root => "",
                title => "Runs",
                rows => Serde(chunk),
                total => rows.len(),
                first => i * PAGE_SIZE + 1,
                page => number,
                pages => Serde(&links),
                manifests => Serde(&manifests),
                profiles => Serde(&profiles),
                statuses => Serde(&statuses),
            },
        )?;
        write(&out.join(page_file(number)), &html)?;
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    #[test]
    fn wall_times_read_in_a_fitting_unit() {
        assert_eq!(super::wall_text(42.0), "42 s");
        assert_eq!(super::wall_text(750.0), "12.5 min");
        assert_eq!(super::wall_text(11520.0), "3.2 h");
    }
}
