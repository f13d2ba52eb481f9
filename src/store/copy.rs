//! `repro db copy`: the runs of one store into another (SQLite ↔ PostgreSQL), with their ids,
//! provenance, metrics and artifacts' hashes as they are.

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int,
    Real,
}

use Kind::{Int, Real, Text};

/// Every table and column of the schema, parents before children. A column added by a
/// migration must be added here too: `copy_keeps_every_column` compares this list with the
/// database's own.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "runs",
        &[
            ("id", Text),
            ("stage", Text),
            ("config_json", Text),
            ("status", Text),
            ("attempt", Int),
            ("seed", Int),
            ("owner", Text),
            ("heartbeat_at", Real),
            ("host", Text),
            ("device", Text),
            ("git_rev", Text),
            ("dirty", Int),
            ("versions", Text),
            ("command", Text),
            ("created_at", Real),
            ("started_at", Real),
            ("finished_at", Real),
            ("wall_s", Real),
            ("error", Text),
            ("job", Text),
            ("job_log", Text),
            ("log_tail", Text),
        ],
    ),
    ("run_parents", &[("run_id", Text), ("parent_id", Text)]),
    (
        "manifest_runs",
        &[
            ("manifest", Text),
            ("profile", Text),
            ("run_id", Text),
            ("stage", Text),
            ("labels", Text),
            ("seed", Int),
        ],
    ),
    (
        "metrics",
        &[
            ("run_id", Text),
            ("split", Text),
            ("epoch", Int),
            ("name", Text),
            ("value", Real),
        ],
    ),
    (
        "class_metrics",
        &[
            ("run_id", Text),
            ("class", Int),
            ("n_train", Int),
            ("n_test", Int),
            ("correct", Int),
        ],
    ),
    (
        "learned_params",
        &[
            ("run_id", Text),
            ("module", Text),
            ("name", Text),
            ("value", Real),
        ],
    ),
    (
        "artifacts",
        &[
            ("run_id", Text),
            ("kind", Text),
            ("path", Text),
            ("sha256", Text),
            ("bytes", Int),
        ],
    ),
    (
        "run_details",
        &[
            ("run_id", Text),
            ("reported_epoch", Int),
            ("reliability", Text),
            ("analyses", Text),
        ],
    ),
];

/// What `copy_into` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopySummary {
    /// Runs written to the destination.
    pub copied: usize,
    /// Runs the destination already had, left as they were there.
    pub kept: usize,
    /// Rows written, all tables together.
    pub rows: usize,
}

impl Store {
    /// Copies every run of this store that `to` lacks, with everything recorded about it, in one
    /// transaction of `to`. Runs `to` already has are left as they are there; manifest
    /// memberships are merged.
    pub fn copy_into(&self, to: &Store) -> Result<CopySummary, StoreError> {
        let existing: HashSet<String> = to
            .run(sqlx::query("SELECT id FROM runs").fetch_all(&to.pool))?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut summary = CopySummary::default();
        let tables = TABLES
            .iter()
            .map(|&(table, columns)| Ok((table, columns, self.read_table(table, columns)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        to.run(async {
            let mut tx = to.pool.begin().await?;
            for (table, columns, rows) in &tables {
                let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
                let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                    names.join(", "),
                    params.join(", ")
                );
                // Memberships are merged; every other row belongs to one run (its first column),
                // which `to` may already have.
                let per_run = *table != "manifest_runs";
                for row in rows {
                    if per_run && existing.contains(&row.try_get::<String, _>(0)?) {
                        summary.kept += usize::from(*table == "runs");
                        continue;
                    }
                    let mut query = sqlx::query(&sql);
                    for (i, (_, kind)) in columns.iter().enumerate() {
                        query = match kind {
                            Text => query.bind(row.try_get::<Option<String>, _>(i)?),
                            Int => query.bind(row.try_get::<Option<i64>, _>(i)?),
                            Real => query.bind(row.try_get::<Option<f64>, _>(i)?),
                        };
                    }
                    summary.rows += query.execute(&mut *tx).await?.rows_affected() as usize;
                    if *table == "runs" {
                        summary.copied += 1;
                    }
                }
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(summary)
    }

    fn read_table(&self, table: &str, columns: &[(&str, Kind)]) -> Result<Vec<AnyRow>, StoreError> {
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        // Plan order, which `manifest_runs` keeps in its rowid (a real column on PostgreSQL).
        let order = if table == "manifest_runs" {
            " ORDER BY rowid"
        } else {
            ""
        };
        let sql = format!("SELECT {} FROM {table}{order}", names.join(", "));
        Ok(self.run(sqlx::query(&sql).fetch_all(&self.pool))?)
    }

    /// The columns of `table` as the database has them, sorted.
    pub fn columns_of(&self, table: &str) -> Result<Vec<String>, StoreError> {
        let sql = format!("SELECT * FROM {table} LIMIT 0");
        let described = self.run(sqlx::Executor::describe(&self.pool, &sql))?;
        let mut names: Vec<String> = described
            .columns()
            .iter()
            .map(|c| sqlx::Column::name(c).to_string())
            .collect();
        names.sort();
        Ok(names)
    }
}

/// The columns `copy_into` carries for `table`, sorted.
pub fn copied_columns(table: &str) -> Vec<&'static str> {
    let mut names: Vec<&str> = TABLES
        .iter()
        .filter(|t| t.0 == table)
        .flat_map(|t| t.1.iter().map(|c| c.0))
        .collect();
    names.sort();
    names
}

/// The tables `copy_into` carries.
pub fn copied_tables() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|t| t.0)
}
