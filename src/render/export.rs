//! Machine-readable forms of a table: JSON (the whole model) and CSV (one line per cell).

use std::fmt::Write as _;

use super::table::{Cell, Row, TableModel};
use super::RenderError;

pub fn json(table: &TableModel) -> Result<String, RenderError> {
    Ok(serde_json::to_string_pretty(table)? + "\n")
}

const CSV_HEADER: [&str; 27] = [
    "manifest",
    "profile",
    "kind",
    "row",
    "group",
    "column",
    "metric",
    "split",
    "stage",
    "expected",
    "done",
    "failed",
    "diverged",
    "running",
    "not_run",
    "no_value",
    "mean",
    "std",
    "se",
    "ci95_low",
    "ci95_high",
    "paper",
    "delta",
    "verdict",
    "k",
    "best",
    "values",
];

/// Long format: one line per (row, column), numbers unrounded; `values` joins the per-seed
/// values with `;`.
pub fn csv(table: &TableModel) -> String {
    let mut out = CSV_HEADER.join(",") + "\n";
    let rows = table
        .reported_rows
        .iter()
        .map(|r| ("paper_only", r))
        .chain(table.rows.iter().map(|r| ("reproduced", r)));
    for (kind, row) in rows {
        for (cell, col) in row.cells.iter().zip(&table.columns) {
            let fields = cell_fields(table, kind, row, cell, col);
            let line: Vec<String> = fields.iter().map(|f| quote(f)).collect();
            let _ = writeln!(out, "{}", line.join(","));
        }
    }
    out
}

fn cell_fields(
    table: &TableModel,
    kind: &str,
    row: &Row,
    cell: &Cell,
    col: &super::table::ColumnHead,
) -> Vec<String> {
    let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let s = cell.summary.as_ref();
    let k = match cell.verdict {
        Some(super::stats::Verdict::WithinNoise { k } | super::stats::Verdict::Off { k }) => Some(k),
        _ => None,
    };
    let counts = &cell.seeds;
    vec![
        table.id.clone(),
        table.profile.clone(),
        kind.to_string(),
        row.label.clone(),
        col.group.clone().unwrap_or_default(),
        col.label.clone(),
        col.metric.clone(),
        col.split.clone(),
        col.stage.clone(),
        counts.expected.to_string(),
        counts.done.to_string(),
        counts.failed.to_string(),
        counts.diverged.to_string(),
        counts.running.to_string(),
        counts.not_run.to_string(),
        counts.no_value.to_string(),
        num(s.map(|s| s.mean)),
        num(s.and_then(|s| s.std)),
        num(s.and_then(|s| s.se)),
        num(s.and_then(|s| s.ci95).map(|c| c.0)),
        num(s.and_then(|s| s.ci95).map(|c| c.1)),
        num(cell.paper),
        num(cell.delta),
        cell.verdict
            .as_ref()
            .map(super::table::verdict_text)
            .unwrap_or_default(),
        num(k),
        cell.best.to_string(),
        cell.values
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(";"),
    ]
}

/// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::quote("a,b"), "\"a,b\"");
        assert_eq!(super::quote("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(super::quote("plain"), "plain");
    }
}
