//! Reads used by `status`, `show`, `list` and render.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::any::AnyRow;
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
    /// The scheduler job that runs or last ran it (Slurm: `1234_7`).
    pub job: Option<String>,
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

fn status_of(row: &AnyRow) -> Result<RunStatus, StoreError> {
    Ok(row.try_get::<&str, _>("status")?.parse()?)
}

impl Store {
    /// Runs of a manifest under a profile, with status and final metrics: what render needs.
    pub fn manifest_runs(&self, manifest: &str, profile: &str) -> Result<Vec<MemberRun>, StoreError> {
        let rows = self.run(
            sqlx::query(
                "SELECT m.run_id, m.stage, m.labels, m.seed, r.status, r.attempt, r.error,
                        r.git_rev, r.dirty, r.job
                 FROM manifest_runs m JOIN runs r ON r.id = m.run_id
                 WHERE m.manifest = $1 AND m.profile = $2 ORDER BY m.rowid",
            )
            .bind(manifest)
            .bind(profile)
            .fetch_all(&self.pool),
        )?;
        let metric_rows = self.run(
            sqlx::query(
                "SELECT run_id, split, name, value FROM metrics
                 WHERE epoch IS NULL AND run_id IN
                   (SELECT run_id FROM manifest_runs WHERE manifest = $1 AND profile = $2)",
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
                    dirty: r.try_get::<Option<i64>, _>("dirty")?.map(|d| d != 0),
                    metrics: metrics.get(&run_id).cloned().unwrap_or_default(),
                    job: r.try_get("job")?,
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
        let all = |sql: &str| self.run(sqlx::query(sql).fetch_all(&self.pool));
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
        all(&format!(
            "SELECT id, stage, seed, status, attempt, {} AS started, wall_s, error
                 FROM runs ORDER BY started_at IS NULL, started_at DESC, id",
            self.dialect.utc("started_at")
        ))?
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
            sqlx::query("SELECT id FROM runs WHERE substr(id, 1, length($1)) = $1 ORDER BY id LIMIT 5")
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
            sqlx::query("SELECT path FROM artifacts WHERE run_id = $1 AND kind = $2 ORDER BY path")
                .bind(id)
                .bind(kind)
                .fetch_all(&self.pool),
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn run_detail(&self, prefix: &str) -> Result<RunDetail, StoreError> {
        let id = self.resolve_prefix(prefix)?;
        let mut details = self.run_details(&[&id])?;
        details.pop().ok_or(StoreError::NotFound(id))
    }

    /// Everything stored about each of `ids`, in their order, in one query per table however
    /// many runs are asked for (a site of 10,000 runs reads them a chunk at a time).
    pub fn run_details(&self, ids: &[&str]) -> Result<Vec<RunDetail>, StoreError> {
        let in_ids = self.in_ids();
        let bound = ids_json(ids)?;
        let mut rows = by_run(self.fetch(
            &format!(
                "SELECT *, id AS run_id, {} AS started, {} AS finished FROM runs WHERE id {in_ids}",
                self.dialect.utc("started_at"),
                self.dialect.utc("finished_at"),
            ),
            &bound,
        )?)?;
        let mut parents = self.grouped(
            &format!("SELECT run_id, parent_id FROM run_parents WHERE run_id {in_ids} ORDER BY parent_id"),
            &bound,
            |r| Ok(r.try_get("parent_id")?),
        )?;
        let mut members = self.grouped(
            &format!(
                "SELECT run_id, manifest, profile, labels FROM manifest_runs
                 WHERE run_id {in_ids} ORDER BY manifest"
            ),
            &bound,
            |r| {
                Ok((
                    r.try_get("manifest")?,
                    r.try_get("profile")?,
                    r.try_get("labels")?,
                ))
            },
        )?;
        let mut results = self.results_by_id(&bound)?;
        ids.iter()
            .map(|&id| {
                let r = rows
                    .remove(id)
                    .and_then(|mut v| v.pop())
                    .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
                Ok(RunDetail {
                    stage: r.try_get("stage")?,
                    status: status_of(&r)?,
                    attempt: r.try_get::<i64, _>("attempt")? as u32,
                    seed: r.try_get::<i64, _>("seed")? as u64,
                    config: serde_json::from_str(r.try_get("config_json")?).map_err(corrupt)?,
                    parents: parents.remove(id).unwrap_or_default(),
                    provenance: provenance(&r)?,
                    result: results.remove(id).unwrap_or_default(),
                    members: members.remove(id).unwrap_or_default(),
                    id: id.to_string(),
                })
            })
            .collect()
    }

    /// What a run is, as registered: `(stage, seed, config JSON, parent ids)`.
    pub fn run_definition(&self, id: &str) -> Result<(String, u64, String, Vec<String>), StoreError> {
        let rows = self.fetch("SELECT stage, seed, config_json FROM runs WHERE id = $1", id)?;
        let row = rows.first().ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let parents = self
            .fetch(
                "SELECT parent_id FROM run_parents WHERE run_id = $1 ORDER BY parent_id",
                id,
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        Ok((
            row.try_get("stage")?,
            row.try_get::<i64, _>("seed")? as u64,
            row.try_get("config_json")?,
            parents,
        ))
    }

    /// The config run `id` was registered with.
    pub fn run_config(&self, id: &str) -> Result<serde_json::Value, StoreError> {
        let rows = self.fetch("SELECT config_json FROM runs WHERE id = $1", id)?;
        let row = rows.first().ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        serde_json::from_str(row.try_get(0)?).map_err(corrupt)
    }

    /// Everything run `id` has recorded, in the schema its trainer produced.
    pub fn result(&self, id: &str) -> Result<RunResult, StoreError> {
        self.results_by_id(&ids_json(&[id])?)?
            .remove(id)
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    /// The results of the runs in `bound` (a JSON array of ids), by id; runs not in the store
    /// are left out.
    fn results_by_id(&self, bound: &str) -> Result<BTreeMap<String, RunResult>, StoreError> {
        let in_ids = self.in_ids();
        let mut out = BTreeMap::new();
        for r in self.fetch(
            &format!("SELECT id, status, error FROM runs WHERE id {in_ids}"),
            bound,
        )? {
            let diverged = match status_of(&r)? {
                RunStatus::Diverged => Some(r.try_get::<Option<String>, _>("error")?.unwrap_or_default()),
                _ => None,
            };
            out.insert(
                r.try_get::<String, _>("id")?,
                RunResult {
                    diverged,
                    ..RunResult::default()
                },
            );
        }
        self.add_metrics(bound, &mut out)?;
        let mut classes = self.grouped(
            &format!(
                "SELECT run_id, class, n_train, n_test, correct FROM class_metrics
                 WHERE run_id {in_ids} ORDER BY run_id, class"
            ),
            bound,
            |r| {
                Ok(ClassResult {
                    class: r.try_get::<i64, _>("class")? as u32,
                    n_train: r.try_get::<i64, _>("n_train")? as u64,
                    n_test: r.try_get::<i64, _>("n_test")? as u64,
                    correct: r.try_get::<i64, _>("correct")? as u64,
                })
            },
        )?;
        // Learned κ/λ (`kappa`, or `kappa.<c>` per channel), by module then name.
        let mut learned = self.grouped(
            &format!(
                "SELECT run_id, module, name, value FROM learned_params
                 WHERE run_id {in_ids} ORDER BY run_id, module, name"
            ),
            bound,
            |r| {
                Ok(LearnedParam {
                    module: r.try_get("module")?,
                    name: r.try_get("name")?,
                    value: r.try_get("value")?,
                })
            },
        )?;
        let mut artifacts = self.grouped(
            &format!(
                "SELECT run_id, kind, path, sha256, bytes FROM artifacts
                 WHERE run_id {in_ids} ORDER BY run_id, kind, path"
            ),
            bound,
            |r| {
                Ok(Artifact {
                    kind: r.try_get("kind")?,
                    path: r.try_get::<String, _>("path")?.into(),
                    sha256: r.try_get("sha256")?,
                    bytes: r.try_get::<Option<i64>, _>("bytes")?.map(|b| b as u64),
                })
            },
        )?;
        let details = self.fetch(
            &format!(
                "SELECT run_id, reported_epoch, reliability, analyses FROM run_details
                 WHERE run_id {in_ids}"
            ),
            bound,
        )?;
        for r in details {
            let id: String = r.try_get("run_id")?;
            if let Some(result) = out.get_mut(&id) {
                result.reported_epoch = r.try_get::<Option<i64>, _>("reported_epoch")?.map(|e| e as usize);
                result.reliability =
                    serde_json::from_str::<Vec<Bin>>(r.try_get("reliability")?).map_err(corrupt)?;
                result.analyses =
                    serde_json::from_str::<Analyses>(r.try_get("analyses")?).map_err(corrupt)?;
            }
        }
        for (id, result) in out.iter_mut() {
            result.classes = classes.remove(id).unwrap_or_default();
            result.learned = learned.remove(id).unwrap_or_default();
            result.artifacts = artifacts.remove(id).unwrap_or_default();
        }
        Ok(out)
    }

    /// Runs named by a JSON array bound as `$1`: one statement for any number of runs.
    fn in_ids(&self) -> String {
        format!("IN ({})", self.dialect.json_strings("$1"))
    }

    /// The rows of `sql` made into `T`s and grouped by their `run_id`, in row order.
    fn grouped<T>(
        &self,
        sql: &str,
        bound: &str,
        item: impl Fn(&AnyRow) -> Result<T, StoreError>,
    ) -> Result<BTreeMap<String, Vec<T>>, StoreError> {
        let mut out: BTreeMap<String, Vec<T>> = BTreeMap::new();
        for r in self.fetch(sql, bound)? {
            out.entry(r.try_get("run_id")?).or_default().push(item(&r)?);
        }
        Ok(out)
    }

    /// Final metrics, and the per-epoch training metrics in epoch order, into each result.
    fn add_metrics(&self, bound: &str, out: &mut BTreeMap<String, RunResult>) -> Result<(), StoreError> {
        let in_ids = self.in_ids();
        let mut epochs: BTreeMap<String, BTreeMap<i64, BTreeMap<String, f64>>> = BTreeMap::new();
        for r in self.fetch(
            &format!("SELECT run_id, split, epoch, name, value FROM metrics WHERE run_id {in_ids}"),
            bound,
        )? {
            let id: String = r.try_get("run_id")?;
            let (split, name, value): (String, String, f64) =
                (r.try_get("split")?, r.try_get("name")?, r.try_get("value")?);
            match r.try_get::<Option<i64>, _>("epoch")? {
                None => {
                    if let Some(result) = out.get_mut(&id) {
                        result.set_metric(&split, &name, value);
                    }
                }
                Some(epoch) if split == TRAIN_SPLIT => {
                    epochs
                        .entry(id)
                        .or_default()
                        .entry(epoch)
                        .or_default()
                        .insert(name, value);
                }
                Some(_) => {}
            }
        }
        for (id, by_epoch) in epochs {
            let Some(result) = out.get_mut(&id) else { continue };
            result.epochs = by_epoch
                .into_iter()
                .map(|(epoch, v)| EpochMetrics {
                    epoch: epoch as usize,
                    loss: v.get("loss").copied().unwrap_or(f64::NAN),
                    lr: v.get("lr").copied(),
                    images_per_s: v.get("images_per_s").copied(),
                    tokens_per_s: v.get("tokens_per_s").copied(),
                    test_top1: v.get("test_top1").copied(),
                    val_loss: v.get("val_loss").copied(),
                    eval_seconds: v.get("eval_s").copied(),
                })
                .collect();
        }
        Ok(())
    }
}

fn ids_json(ids: &[&str]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(corrupt)
}

/// Rows keyed by their `run_id` column.
fn by_run(rows: Vec<AnyRow>) -> Result<BTreeMap<String, Vec<AnyRow>>, StoreError> {
    let mut out: BTreeMap<String, Vec<AnyRow>> = BTreeMap::new();
    for r in rows {
        out.entry(r.try_get("run_id")?).or_default().push(r);
    }
    Ok(out)
}

/// host, device, git_rev, command, started/finished (UTC), error, dirty, wall_s, versions.
fn provenance(r: &AnyRow) -> Result<BTreeMap<String, serde_json::Value>, StoreError> {
    let mut provenance = BTreeMap::new();
    for key in [
        "host", "device", "git_rev", "command", "started", "finished", "error", "job", "job_log", "log_tail",
    ] {
        let v: Option<String> = r.try_get(key)?;
        provenance.insert(key.to_string(), v.map_or(serde_json::Value::Null, Into::into));
    }
    let dirty: Option<i64> = r.try_get("dirty")?;
    provenance.insert("dirty".into(), dirty.map(|d| d != 0).into());
    let wall: Option<f64> = r.try_get("wall_s")?;
    provenance.insert("wall_s".into(), wall.into());
    let versions: Option<String> = r.try_get("versions")?;
    let versions = versions
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or(serde_json::Value::Null);
    provenance.insert("versions".into(), versions);
    Ok(provenance)
}
