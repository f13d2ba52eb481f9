//! The table model: a manifest's `table` section filled from the store. A cell is the runs of one
//! (row, column) over the profile's seeds, summarised and compared with the paper's number.
//! Everything a template prints is computed here, so templates only lay it out.

use std::collections::BTreeSet;

use serde::Serialize;

use super::stats::{round, summarise, tied, verdict, Summary, Verdict};
use super::RenderError;
use crate::config::load::{row_keys, row_labels, stage_order};
use crate::config::manifest::{Better, TableSpec};
use crate::config::LoadedManifest;
use crate::plan::seeds_for;
use crate::result::RunStatus;
use crate::store::MemberRun;

/// Decimals when neither the table nor the column says.
const DEFAULT_PRECISION: usize = 1;

#[derive(Debug, Clone, Serialize)]
pub struct TableModel {
    pub id: String,
    pub title: String,
    /// The paper's table number, e.g. "4(f)".
    pub paper_table: Option<String>,
    pub profile: String,
    /// Why the manifest cannot run; its table then shows the paper's numbers only.
    pub unsupported: Option<String>,
    /// Header of the row-label column: the row axes' names.
    pub row_header: String,
    /// Column groups (one per `column_axis` value; one unnamed group without a column axis).
    pub groups: Vec<ColumnGroup>,
    /// All columns, group after group.
    pub columns: Vec<ColumnHead>,
    /// Rows the paper reports but this manifest does not run (shown first, paper numbers only).
    pub reported_rows: Vec<Row>,
    pub rows: Vec<Row>,
    pub seeds: Vec<u64>,
    /// Code revisions of the finished runs (`abc1234`, `+dirty` when the tree had changes).
    pub revisions: Vec<String>,
    pub cells_complete: usize,
    pub cells_total: usize,
    /// Cells showing a mean of fewer seeds than expected (starred in the compact LaTeX).
    pub cells_partial: usize,
    /// The noise threshold k in |Δ| ≤ k·σ/√n.
    pub noise_k: f64,
    /// What the profile substitutes for the paper's setting (e.g. a smaller dataset).
    pub profile_note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnGroup {
    pub label: Option<String>,
    pub span: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnHead {
    pub label: String,
    pub group: Option<String>,
    pub metric: String,
    pub split: String,
    pub stage: String,
    pub precision: usize,
    pub tolerance: Option<f64>,
    pub better: Better,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub label: String,
    pub cells: Vec<Cell>,
}

/// Seeds of a cell by what became of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeedCounts {
    pub expected: usize,
    /// Done and carrying the column's metric: the values summarised.
    pub done: usize,
    pub failed: usize,
    pub diverged: usize,
    pub running: usize,
    /// Pending, interrupted, or not in the store at all.
    pub not_run: usize,
    /// Done, but without this metric (e.g. no few-shot classes in the test set).
    pub no_value: usize,
}

impl SeedCounts {
    pub fn complete(&self) -> bool {
        self.expected > 0 && self.done == self.expected
    }

    /// What the table says instead of (or next to) the numbers; `None` when every seed is in.
    pub fn status(&self) -> Option<String> {
        if self.complete() {
            return None;
        }
        let others = [
            (self.failed, "failed"),
            (self.diverged, "diverged"),
            (self.running, "running"),
            (self.not_run, "not run"),
            (self.no_value, "no value"),
        ];
        let others: Vec<(usize, &str)> = others.into_iter().filter(|(n, _)| *n > 0).collect();
        if self.done > 0 {
            let mut parts = vec![format!("{}/{} seeds", self.done, self.expected)];
            parts.extend(others.iter().map(|(n, w)| format!("{n} {w}")));
            return Some(parts.join(", "));
        }
        match others.as_slice() {
            [(n, word)] if *n == self.expected => Some(word.to_string()),
            [] => Some("no seeds".into()),
            _ => Some(
                others
                    .iter()
                    .map(|(n, w)| format!("{n} {w}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// Values of the finished seeds, in seed order.
    pub values: Vec<f64>,
    pub summary: Option<Summary>,
    pub seeds: SeedCounts,
    pub paper: Option<f64>,
    /// Reproduced mean − paper.
    pub delta: Option<f64>,
    pub verdict: Option<Verdict>,
    /// Best of its column, or tied with the best within noise.
    pub best: bool,
    pub text: CellText,
    /// The runs behind the cell: the seeds the store has a run for, in seed order.
    pub runs: Vec<CellRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CellRun {
    pub run_id: String,
    pub seed: u64,
    pub status: RunStatus,
}

/// The cell's numbers as printed, at the column's precision.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CellText {
    pub mean: Option<String>,
    pub std: Option<String>,
    pub n: String,
    pub paper: Option<String>,
    /// Signed: `+0.4`, `-0.3`.
    pub delta: Option<String>,
    /// `within noise`, `within tolerance`, `off by 3.1σ`-style k (`3.1`), or `n=1`.
    pub verdict: Option<String>,
    pub k: Option<String>,
    /// Replaces or qualifies the numbers: `2/3 seeds, 1 failed`, `failed`, `not run`.
    pub status: Option<String>,
}

/// Builds the table of `m` under `profile` from its member runs (as the store lists them).
pub fn build(m: &LoadedManifest, profile: &str, runs: &[MemberRun]) -> Result<TableModel, RenderError> {
    let man = &m.manifest;
    let table = man
        .table
        .as_ref()
        .ok_or_else(|| RenderError::NoTable(man.id.clone()))?;
    let seeds = seeds_for(m, profile);
    let columns = column_heads(m, table);
    let groups = column_groups(&columns);
    let mut rows: Vec<Row> = row_keys(man, table)
        .into_iter()
        .zip(row_labels(man, table))
        .map(|(key, label)| {
            let reported = table.reported.get(&label);
            let cells = columns
                .iter()
                .enumerate()
                .map(|(i, col)| {
                    let members = runs.iter().filter(|r| {
                        r.stage == col.stage
                            && key.iter().all(|(a, v)| r.labels.get(a) == Some(v))
                            && column_matches(table, col, r)
                    });
                    let paper = reported.and_then(|v| v.get(i).copied().flatten());
                    cell(members.collect(), &seeds, col, paper)
                })
                .collect();
            Row { label, cells }
        })
        .collect();
    mark_best(&mut rows, &columns);
    let reported_rows = table
        .reported_rows
        .iter()
        .map(|(label, values)| Row {
            label: label.clone(),
            cells: columns
                .iter()
                .enumerate()
                .map(|(i, col)| paper_only(values.get(i).copied().flatten(), col, seeds.len()))
                .collect(),
        })
        .collect();
    let cells_total = rows.len() * columns.len();
    let cells_complete = rows
        .iter()
        .flat_map(|r| &r.cells)
        .filter(|c| c.seeds.complete())
        .count();
    let cells_partial = rows
        .iter()
        .flat_map(|r| &r.cells)
        .filter(|c| c.summary.is_some() && !c.seeds.complete())
        .count();
    Ok(TableModel {
        id: man.id.clone(),
        title: man.title.clone(),
        paper_table: man.paper.as_ref().map(|p| paper_reference(&p.table)),
        profile: profile.to_string(),
        unsupported: man.unsupported.clone(),
        row_header: table.rows.names().join(" / "),
        groups,
        columns,
        reported_rows,
        rows,
        seeds,
        revisions: revisions(runs),
        cells_complete,
        cells_total,
        cells_partial,
        noise_k: super::stats::NOISE_K,
        profile_note: man.profiles.get(profile).and_then(|p| p.note.clone()),
    })
}

/// The stage whose runs fill the table unless a column says otherwise: the table's `stage`, else
/// the last stage in dependency order.
pub fn table_stage(m: &LoadedManifest) -> String {
    let man = &m.manifest;
    if let Some(stage) = man.table.as_ref().and_then(|t| t.stage.clone()) {
        return stage;
    }
    let needs = man
        .stage_defs()
        .iter()
        .map(|(k, v)| (k.clone(), v.needs.clone()))
        .collect();
    // Loading rejects stage cycles; a cycle here would fall back to the last stage by name.
    stage_order(&needs)
        .unwrap_or_else(|_| needs.keys().cloned().collect())
        .pop()
        .unwrap_or_default()
}

fn column_heads(m: &LoadedManifest, table: &TableSpec) -> Vec<ColumnHead> {
    let man = &m.manifest;
    let stage = table_stage(m);
    let stage = &stage;
    let groups: Vec<Option<String>> = match &table.column_axis {
        Some(axis) => {
            let ax = &man.axes[axis];
            (0..ax.values.len()).map(|i| Some(ax.label(i))).collect()
        }
        None => vec![None],
    };
    groups
        .into_iter()
        .flat_map(|group| {
            table.columns.iter().map(move |c| ColumnHead {
                label: c.label.clone().unwrap_or_else(|| c.metric.clone()),
                group: group.clone(),
                metric: c.metric.clone(),
                split: c.split.clone(),
                stage: c.stage.clone().unwrap_or_else(|| stage.clone()),
                precision: c.precision.or(table.precision).unwrap_or(DEFAULT_PRECISION),
                tolerance: c.tolerance.or(table.tolerance),
                better: c.better(),
            })
        })
        .collect()
}

fn column_groups(columns: &[ColumnHead]) -> Vec<ColumnGroup> {
    let mut groups: Vec<ColumnGroup> = Vec::new();
    for c in columns {
        match groups.last_mut() {
            Some(g) if g.label == c.group => g.span += 1,
            _ => groups.push(ColumnGroup {
                label: c.group.clone(),
                span: 1,
            }),
        }
    }
    groups
}

fn column_matches(table: &TableSpec, col: &ColumnHead, run: &MemberRun) -> bool {
    match (&table.column_axis, &col.group) {
        (Some(axis), Some(label)) => run.labels.get(axis) == Some(label),
        _ => true,
    }
}

fn cell(members: Vec<&MemberRun>, seeds: &[u64], col: &ColumnHead, paper: Option<f64>) -> Cell {
    let mut counts = SeedCounts {
        expected: seeds.len(),
        ..SeedCounts::default()
    };
    let mut values = Vec::new();
    let mut runs = Vec::new();
    for seed in seeds {
        let Some(run) = members.iter().find(|r| r.seed == *seed) else {
            counts.not_run += 1;
            continue;
        };
        runs.push(CellRun {
            run_id: run.run_id.clone(),
            seed: run.seed,
            status: run.status,
        });
        match run.status {
            RunStatus::Done => {
                match run
                    .metrics
                    .get(&col.split)
                    .and_then(|m| m.get(&col.metric))
                    .filter(|v| v.is_finite())
                {
                    Some(v) => {
                        counts.done += 1;
                        values.push(*v);
                    }
                    None => counts.no_value += 1,
                }
            }
            RunStatus::Failed => counts.failed += 1,
            RunStatus::Diverged => counts.diverged += 1,
            RunStatus::Running => counts.running += 1,
            RunStatus::Pending | RunStatus::Interrupted => counts.not_run += 1,
        }
    }
    let summary = summarise(&values);
    let delta = summary.as_ref().zip(paper).map(|(s, p)| s.mean - p);
    let verdict = summary
        .as_ref()
        .zip(paper)
        .map(|(s, p)| verdict(s, p, col.tolerance));
    let p = col.precision;
    let text = CellText {
        mean: summary.as_ref().map(|s| round(s.mean, p)),
        std: summary.as_ref().and_then(|s| s.std).map(|s| round(s, p)),
        n: match counts.complete() {
            true => counts.done.to_string(),
            false => format!("{}/{}", counts.done, counts.expected),
        },
        paper: paper.map(|v| round(v, p)),
        delta: delta.map(|d| format!("{d:+.p$}")),
        verdict: verdict.map(|v| verdict_text(&v)),
        k: verdict.and_then(|v| match v {
            Verdict::WithinNoise { k } | Verdict::Off { k } => Some(format!("{k:.1}")),
            _ => None,
        }),
        status: counts.status(),
    };
    Cell {
        values,
        summary,
        seeds: counts,
        paper,
        delta,
        verdict,
        best: false,
        text,
        runs,
    }
}

/// Plain-text verdict (CSV, JSON and templates that want words rather than symbols).
pub fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::WithinNoise { .. } => "within noise".into(),
        Verdict::WithinTolerance => "within tolerance".into(),
        Verdict::Off { k } => format!("off by {k:.1} sigma"),
        Verdict::NoNoiseEstimate => "no noise estimate".into(),
    }
}

fn paper_only(paper: Option<f64>, col: &ColumnHead, expected: usize) -> Cell {
    Cell {
        values: Vec::new(),
        summary: None,
        seeds: SeedCounts {
            expected,
            ..SeedCounts::default()
        },
        paper,
        delta: None,
        verdict: None,
        best: false,
        text: CellText {
            paper: paper.map(|v| round(v, col.precision)),
            n: String::new(),
            ..CellText::default()
        },
        runs: Vec::new(),
    }
}

/// Bolds the best cell of each column and every cell tied with it within noise. A column with
/// fewer than two reproduced cells has nothing to compare, so nothing is bold.
fn mark_best(rows: &mut [Row], columns: &[ColumnHead]) {
    for (i, col) in columns.iter().enumerate() {
        let candidates: Vec<(usize, Summary)> = rows
            .iter()
            .enumerate()
            .filter_map(|(r, row)| row.cells[i].summary.clone().map(|s| (r, s)))
            .collect();
        if candidates.len() < 2 {
            continue;
        }
        let key = |s: &Summary| match col.better {
            Better::Higher => s.mean,
            Better::Lower => -s.mean,
        };
        let Some((_, best)) = candidates
            .iter()
            .max_by(|a, b| key(&a.1).total_cmp(&key(&b.1)))
            .cloned()
        else {
            continue;
        };
        for (r, s) in &candidates {
            rows[*r].cells[i].best = tied(s, &best, col.precision);
        }
    }
}

fn revisions(runs: &[MemberRun]) -> Vec<String> {
    let revs: BTreeSet<String> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Done)
        .map(|r| {
            let rev = r.git_rev.as_deref().unwrap_or("unknown");
            let short = rev.get(..7).unwrap_or(rev);
            match r.dirty {
                Some(true) => format!("{short}+dirty"),
                _ => short.to_string(),
            }
        })
        .collect();
    revs.into_iter().collect()
}

/// How a caption names the paper's table or figure: `Table 4(f)`, `Figure 1`.
fn paper_reference(table: &str) -> String {
    if table.starts_with("Figure") || table.starts_with("Table") {
        table.to_string()
    } else {
        format!("Table {table}")
    }
}
