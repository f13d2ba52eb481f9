//! Reads used by `status`, `show`, `list` and render.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::record::TRAIN_SPLIT;
use super::{Store, StoreError};
use crate::result::{
    Analyses, Artifact, Bin, ClassResult, EpochMetrics, LearnedParam, Metrics, RunResult, RunStatus,
};

/// One run of a manifest, at its table coordinates, with its final metrics.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRun {
    pub run_id: String,
    pub stage: String,
    pub labels: BTreeMap<String, String>,
    pub seed: u64,
    pub status: RunStatus,
    pub attempt: u32,
    pub error: Option<String>,
    /// Code revision the (last attempt of the) run ran at, and whether the tree was dirty.
    pub git_rev: Option<String>,
    pub dirty: Option<bool>,
    /// Final metrics only.
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestSummary {
    pub manifest: String,
    pub profile: String,
    pub total: usize,
    pub by_status: BTreeMap<String, usize>,
    /// When the latest of its runs was started (Unix seconds); none has started when `None`.
    pub last_started: Option<f64>,
}

impl ManifestSummary {
    pub fn done(&self) -> usize {
        self.by_status.get("done").copied().unwrap_or(0)
    }
}

/// Everything stored about one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    pub id: String,
    pub stage: String,
    pub status: RunStatus,
    pub attempt: u32,
    pub seed: u64,
    pub config: serde_json::Value,
    pub parents: Vec<String>,
    /// host, device, git_rev, dirty, versions, command, started/finished (UTC), wall_s, error.
    pub provenance: BTreeMap<String, serde_json::Value>,
    /// What the run has recorded so far (all of it once it is done or diverged).
    pub result: RunResult,
    /// (manifest, profile, labels) this run appears in.
    pub members: Vec<(String, String, String)>,
}

/// One line of the list of every run: what a runs table shows and filters by.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub stage: String,
    pub seed: u64,
    pub status: RunStatus,
    pub attempt: u32,
    /// When its last attempt started, UTC (`2026-12-02 06:19:52`).
    pub started: Option<String>,
    pub wall_s: Option<f64>,
    pub error: Option<String>,
    /// Final test top-1.
    pub top1: Option<f64>,
    pub members: Vec<Membership>,
}

/// A run's place in a manifest under a profile.
#[derive(Debug, Clone, Serialize)]
pub struct Membership {
    pub manifest: String,
    pub profile: String,
    pub labels: BTreeMap<String, String>,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn status_of(row: &SqliteRow) -> Result<RunStatus, StoreError> {
    Ok(row.try_get::<&str, _>("status")?.parse()?)
}

impl Store {
    /// Runs of a manifest under a profile, with status and final metrics: what render needs.
    pub fn manifest_runs(&self, manifest: &str, profile: &str) -> Result<Vec<MemberRun>, StoreError> {
        let rows = self.run(
            sqlx::query(
                "SELECT m.run_id, m.stage, m.labels, m.seed, r.status, r.attempt, r.error,
                        r.git_rev, r.dirty
                 FROM manifest_runs m JOIN runs r ON r.id = m.run_id
                 WHERE m.manifest = ?1 AND m.profile = ?2 ORDER BY m.rowid",
            )
            .bind(manifest)
            .bind(profile)
            .fetch_all(&self.pool),
        )?;
        let metric_rows = self.run(
            sqlx::query(
                "SELECT run_id, split, name, value FROM metrics
                 WHERE epoch IS NULL AND run_id IN
                   (SELECT run_id FROM manifest_runs WHERE manifest = ?1 AND profile = ?2)",
            )
            .bind(manifest)
            .bind(profile)
            .fetch_all(&self.pool),
        )?;
        let mut metrics: BTreeMap<String, Metrics> = BTreeMap::new();
        for r in metric_rows {
            metrics
                .entry(r.try_get("run_id")?)
                .or_default()
                .entry(r.try_get("split")?)
                .or_default()
                .insert(r.try_get("name")?, r.try_get("value")?);
        }
        rows.iter()
            .map(|r| {
                let run_id: String = r.try_get("run_id")?;
                Ok(MemberRun {
                    stage: r.try_get("stage")?,
                    labels: serde_json::from_str(r.try_get("labels")?).map_err(corrupt)?,
                    seed: r.try_get::<i64, _>("seed")? as u64,
                    status: status_of(r)?,
                    attempt: r.try_get::<i64, _>("attempt")? as u32,
                    error: r.try_get("error")?,
                    git_rev: r.try_get("git_rev")?,
                    dirty: r.try_get("dirty")?,
                    metrics: metrics.get(&run_id).cloned().unwrap_or_default(),
                    run_id,
                })
            })
            .collect()
    }

    /// Every manifest/profile the store has runs for, with counts by status.
    pub fn manifest_summaries(&self) -> Result<Vec<ManifestSummary>, StoreError> {
        let rows = self.run(
            sqlx::query(
                "SELECT m.manifest, m.profile, r.status, COUNT(DISTINCT r.id) AS n,
                        MAX(r.started_at) AS last_started
                 FROM manifest_runs m JOIN runs r ON r.id = m.run_id
                 GROUP BY m.manifest, m.profile, r.status ORDER BY m.manifest, m.profile",
            )
            .fetch_all(&self.pool),
        )?;
        let mut out: Vec<ManifestSummary> = Vec::new();
        for r in rows {
            let manifest: String = r.try_get("manifest")?;
            let profile: String = r.try_get("profile")?;
            let n = r.try_get::<i64, _>("n")? as usize;
            let status: String = r.try_get("status")?;
            let last_started: Option<f64> = r.try_get("last_started")?;
            match out.last_mut() {
                Some(s) if s.manifest == manifest && s.profile == profile => {
                    s.total += n;
                    s.by_status.insert(status, n);
                    s.last_started = match (s.last_started, last_started) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                }
                _ => out.push(ManifestSummary {
                    manifest,
                    profile,
                    total: n,
                    by_status: BTreeMap::from([(status, n)]),
                    last_started,
                }),
            }
        }
        Ok(out)
    }

    /// Every run, the latest started first, with its memberships and final test top-1: three queries
    /// whatever the number of runs.
    pub fn run_summaries(&self) -> Result<Vec<RunSummary>, StoreError> {
        let all = |sql: &'static str| self.run(sqlx::query(sql).fetch_all(&self.pool));
        let mut members: BTreeMap<String, Vec<Membership>> = BTreeMap::new();
        for r in all("SELECT run_id, manifest, profile, labels FROM manifest_runs ORDER BY rowid")? {
            members.entry(r.try_get("run_id")?).or_default().push(Membership {
                manifest: r.try_get("manifest")?,
                profile: r.try_get("profile")?,
                labels: serde_json::from_str(r.try_get("labels")?).map_err(corrupt)?,
            });
        }
        let mut top1: BTreeMap<String, f64> = BTreeMap::new();
        for r in all("SELECT run_id, value FROM metrics
             WHERE epoch IS NULL AND split = 'test' AND name = 'top1'")?
        {
            top1.insert(r.try_get("run_id")?, r.try_get("value")?);
        }
        all(
            "SELECT id, stage, seed, status, attempt, datetime(started_at, 'unixepoch') AS started,
                    wall_s, error
             FROM runs ORDER BY started_at IS NULL, started_at DESC, id",
        )?
        .iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            Ok(RunSummary {
                stage: r.try_get("stage")?,
                seed: r.try_get::<i64, _>("seed")? as u64,
                status: status_of(r)?,
                attempt: r.try_get::<i64, _>("attempt")? as u32,
                started: r.try_get("started")?,
                wall_s: r.try_get("wall_s")?,
                error: r.try_get("error")?,
                top1: top1.get(&id).copied(),
                members: members.remove(&id).unwrap_or_default(),
                id,
            })
        })
        .collect()
    }

    /// Full ids starting with `prefix`.
    pub fn resolve_prefix(&self, prefix: &str) -> Result<String, StoreError> {
        let rows = self.run(
            sqlx::query("SELECT id FROM runs WHERE id >= ?1 AND id < ?1 || x'ff' LIMIT 5")
                .bind(prefix)
                .fetch_all(&self.pool),
        )?;
        let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        match ids.len() {
            0 => Err(StoreError::NotFound(prefix.to_string())),
            1 => Ok(ids[0].clone()),
            _ => Err(StoreError::Ambiguous(prefix.to_string(), ids.join(", "))),
        }
    }

    /// Artifacts of a kind recorded for a run (parent checkpoints for dependent stages).
    pub fn artifacts_of(&self, id: &str, kind: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.run(
            sqlx::query("SELECT path FROM artifacts WHERE run_id = ?1 AND kind = ?2 ORDER BY path")
                .bind(id)
                .bind(kind)
                .fetch_all(&self.pool),
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn run_detail(&self, prefix: &str) -> Result<RunDetail, StoreError> {
        let id = self.resolve_prefix(prefix)?;
        let r = self.run(
            sqlx::query(
                "SELECT *, datetime(started_at, 'unixepoch') AS started,
                        datetime(finished_at, 'unixepoch') AS finished
                 FROM runs WHERE id = ?1",
            )
            .bind(&id)
            .fetch_one(&self.pool),
        )?;
        let mut provenance = BTreeMap::new();
        for key in [
            "host", "device", "git_rev", "command", "started", "finished", "error",
        ] {
            let v: Option<String> = r.try_get(key)?;
            provenance.insert(key.to_string(), v.map_or(serde_json::Value::Null, Into::into));
        }
        let dirty: Option<bool> = r.try_get("dirty")?;
        provenance.insert("dirty".into(), dirty.into());
        let wall: Option<f64> = r.try_get("wall_s")?;
        provenance.insert("wall_s".into(), wall.into());
        let versions: Option<String> = r.try_get("versions")?;
        let versions = versions
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or(serde_json::Value::Null);
        provenance.insert("versions".into(), versions);
        Ok(RunDetail {
            stage: r.try_get("stage")?,
            status: status_of(&r)?,
            attempt: r.try_get::<i64, _>("attempt")? as u32,
            seed: r.try_get::<i64, _>("seed")? as u64,
            config: serde_json::from_str(r.try_get("config_json")?).map_err(corrupt)?,
            parents: self.strings("SELECT parent_id FROM run_parents WHERE run_id = ?1", &id)?,
            provenance,
            result: self.result(&id)?,
            members: self.members(&id)?,
            id,
        })
    }

    /// The config run `id` was registered with.
    pub fn run_config(&self, id: &str) -> Result<serde_json::Value, StoreError> {
        let rows = self.fetch("SELECT config_json FROM runs WHERE id = ?1", id)?;
        let row = rows.first().ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        serde_json::from_str(row.try_get(0)?).map_err(corrupt)
    }

    /// Everything run `id` has recorded, in the schema its trainer produced.
    pub fn result(&self, id: &str) -> Result<RunResult, StoreError> {
        let status_row = self.fetch("SELECT status, error FROM runs WHERE id = ?1", id)?;
        let Some(row) = status_row.first() else {
            return Err(StoreError::NotFound(id.to_string()));
        };
        let diverged = match status_of(row)? {
            RunStatus::Diverged => Some(row.try_get::<Option<String>, _>("error")?.unwrap_or_default()),
            _ => None,
        };
        let (metrics, epochs) = self.metrics_of(id)?;
        let mut result = RunResult {
            diverged,
            metrics,
            epochs,
            classes: self.class_results(id)?,
            learned: self.learned_params(id)?,
            artifacts: self.artifacts(id)?,
            ..RunResult::default()
        };
        if let Some(r) = self
            .fetch(
                "SELECT reported_epoch, reliability, analyses FROM run_details WHERE run_id = ?1",
                id,
            )?
            .first()
        {
            result.reported_epoch = r.try_get::<Option<i64>, _>(0)?.map(|e| e as usize);
            result.reliability = serde_json::from_str::<Vec<Bin>>(r.try_get(1)?).map_err(corrupt)?;
            result.analyses = serde_json::from_str::<Analyses>(r.try_get(2)?).map_err(corrupt)?;
        }
        Ok(result)
    }

    fn fetch(&self, sql: &str, id: &str) -> Result<Vec<SqliteRow>, StoreError> {
        Ok(self.run(sqlx::query(sql).bind(id).fetch_all(&self.pool))?)
    }

    fn strings(&self, sql: &str, id: &str) -> Result<Vec<String>, StoreError> {
        self.fetch(sql, id)?.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Final metrics, and the per-epoch training metrics in epoch order.
    fn metrics_of(&self, id: &str) -> Result<(Metrics, Vec<EpochMetrics>), StoreError> {
        let mut finals = Metrics::new();
        let mut epochs: BTreeMap<i64, BTreeMap<String, f64>> = BTreeMap::new();
        for r in self.fetch(
            "SELECT split, epoch, name, value FROM metrics WHERE run_id = ?1",
            id,
        )? {
            let (split, name, value): (String, String, f64) =
                (r.try_get("split")?, r.try_get("name")?, r.try_get("value")?);
            match r.try_get::<Option<i64>, _>("epoch")? {
                None => {
                    finals.entry(split).or_default().insert(name, value);
                }
                Some(epoch) if split == TRAIN_SPLIT => {
                    epochs.entry(epoch).or_default().insert(name, value);
                }
                Some(_) => {}
            }
        }
        let epochs = epochs
            .into_iter()
            .map(|(epoch, v)| EpochMetrics {
                epoch: epoch as usize,
                loss: v.get("loss").copied().unwrap_or(f64::NAN),
                lr: v.get("lr").copied(),
                images_per_s: v.get("images_per_s").copied(),
                test_top1: v.get("test_top1").copied(),
            })
            .collect();
        Ok((finals, epochs))
    }

    fn class_results(&self, id: &str) -> Result<Vec<ClassResult>, StoreError> {
        self.fetch(
            "SELECT class, n_train, n_test, correct FROM class_metrics WHERE run_id = ?1 ORDER BY class",
            id,
        )?
        .iter()
        .map(|r| {
            Ok(ClassResult {
                class: r.try_get::<i64, _>(0)? as u32,
                n_train: r.try_get::<i64, _>(1)? as u64,
                n_test: r.try_get::<i64, _>(2)? as u64,
                correct: r.try_get::<i64, _>(3)? as u64,
            })
        })
        .collect()
    }

    /// Learned κ/λ of a run (`kappa`, or `kappa.<c>` per channel), by module then name.
    fn learned_params(&self, id: &str) -> Result<Vec<LearnedParam>, StoreError> {
        self.fetch(
            "SELECT module, name, value FROM learned_params WHERE run_id = ?1 ORDER BY module, name",
            id,
        )?
        .iter()
        .map(|r| {
            Ok(LearnedParam {
                module: r.try_get(0)?,
                name: r.try_get(1)?,
                value: r.try_get(2)?,
            })
        })
        .collect()
    }

    fn artifacts(&self, id: &str) -> Result<Vec<Artifact>, StoreError> {
        self.fetch(
            "SELECT kind, path, sha256, bytes FROM artifacts WHERE run_id = ?1 ORDER BY kind, path",
            id,
        )?
        .iter()
        .map(|r| {
            Ok(Artifact {
                kind: r.try_get(0)?,
                path: r.try_get::<String, _>(1)?.into(),
                sha256: r.try_get(2)?,
                bytes: r.try_get::<Option<i64>, _>(3)?.map(|b| b as u64),
            })
        })
        .collect()
    }

    fn members(&self, id: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        self.fetch(
            "SELECT manifest, profile, labels FROM manifest_runs WHERE run_id = ?1 ORDER BY manifest",
            id,
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
    }
}
