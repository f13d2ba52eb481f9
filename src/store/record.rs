//! Writes: registering a plan, claiming runs, recording results, status changes.

use std::collections::HashMap;

use sqlx::Row;

use super::{now, Store, StoreError};
use crate::plan::Plan;
use crate::result::{EpochMetrics, RunResult, RunStatus};

/// Ends a run that this owner is running, as one statement (binds: id, owner, status, error,
/// time).
const END_RUN: &str = "UPDATE runs SET status = $3, error = $4, finished_at = $5, wall_s = $5 - started_at,
        owner = NULL
 WHERE id = $1 AND owner = $2 AND status = 'running'";

/// Who runs a run, recorded when it is claimed.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub host: String,
    pub git_rev: Option<String>,
    pub dirty: Option<bool>,
    /// JSON object: crate version, backend...
    pub versions: String,
    pub command: String,
}

/// A claim on one run by this process on one device.
#[derive(Debug, Clone)]
pub struct Claim<'a> {
    /// `host:pid`, so a crashed process's runs can be recognised.
    pub owner: &'a str,
    pub device: &'a str,
    pub provenance: &'a Provenance,
    /// The scheduler job this process is, when it is one. A running run names the job that
    /// claimed it, so a job that starts again knows the runs it left behind.
    pub job: Option<JobRef<'a>>,
}

/// A scheduler job and the file its output goes to.
#[derive(Debug, Clone, Copy)]
pub struct JobRef<'a> {
    pub id: &'a str,
    pub log: &'a str,
}

/// A run marked running and the process that holds it, as the store last heard.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Holder {
    pub run: String,
    /// `host:pid`.
    pub owner: String,
    /// When the owner last said it was alive (Unix seconds).
    pub heartbeat_at: Option<f64>,
}

impl Holder {
    /// `(host, pid)` when the owner has that form.
    pub fn host_pid(&self) -> Option<(&str, u32)> {
        let (host, pid) = self.owner.rsplit_once(':')?;
        Some((host, pid.parse().ok()?))
    }

    /// Seconds since the last heartbeat (infinite when there never was one).
    pub fn silent_for_s(&self) -> f64 {
        self.heartbeat_at.map_or(f64::INFINITY, |t| (now() - t).max(0.0))
    }
}

/// The split per-epoch training metrics are stored under.
pub(super) const TRAIN_SPLIT: &str = "train";

fn ids_json(ids: &[&str]) -> String {
    serde_json::to_string(ids).expect("strings serialise")
}

impl Store {
    /// Records the runs, their edges, and this manifest/profile's membership (replacing the
    /// previous membership, which a manifest edit may have changed). One transaction.
    pub fn register_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        // Whole tables go in as one JSON parameter each: one statement per table keeps a
        // 10,000-run plan well under a second.
        let runs: Vec<_> = plan
            .nodes
            .iter()
            .map(|n| serde_json::json!([n.id, n.stage, n.config_json, n.seed]))
            .collect();
        let edges: Vec<_> = plan
            .nodes
            .iter()
            .flat_map(|n| n.parent_ids.iter().map(move |p| serde_json::json!([n.id, p])))
            .collect();
        let members: Vec<_> = plan
            .members
            .iter()
            .map(|m| {
                let labels = serde_json::to_string(&m.labels).expect("labels serialise");
                serde_json::json!([plan.nodes[m.node].id, m.stage, labels, m.seed])
            })
            .collect();
        let d = self.dialect;
        self.run(async {
            let mut tx = self.pool.begin().await?;
            // A write first, so the transaction holds the write lock before it reads anything.
            sqlx::query("DELETE FROM manifest_runs WHERE manifest = $1 AND profile = $2")
                .bind(&plan.manifest)
                .bind(&plan.profile)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "INSERT INTO runs (id, stage, config_json, seed, created_at)
                 SELECT value ->> 0, value ->> 1, value ->> 2, CAST(value ->> 3 AS BIGINT), $2
                 FROM {} WHERE true ON CONFLICT DO NOTHING",
                d.json_rows("$1")
            ))
            .bind(serde_json::Value::Array(runs).to_string())
            .bind(now())
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO run_parents (run_id, parent_id)
                 SELECT value ->> 0, value ->> 1 FROM {} WHERE true ON CONFLICT DO NOTHING",
                d.json_rows("$1")
            ))
            .bind(serde_json::Value::Array(edges).to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO manifest_runs (manifest, profile, run_id, stage, labels, seed)
                 SELECT $2, $3, value ->> 0, value ->> 1, value ->> 2, CAST(value ->> 3 AS BIGINT)
                 FROM {} WHERE true ON CONFLICT DO NOTHING",
                d.json_rows("$1")
            ))
            .bind(serde_json::Value::Array(members).to_string())
            .bind(&plan.manifest)
            .bind(&plan.profile)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Status of each of `ids` that the store knows.
    pub fn statuses(&self, ids: &[&str]) -> Result<HashMap<String, RunStatus>, StoreError> {
        let sql = format!(
            "SELECT id, status FROM runs WHERE id IN ({})",
            self.dialect.json_strings("$1")
        );
        let rows = self.fetch(&sql, &ids_json(ids))?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get::<&str, _>("status")?.parse()?)))
            .collect()
    }

    /// Claims a run in one statement: only a pending or interrupted run whose parents are all
    /// done can be claimed, so two processes never run the same run. Returns the attempt number,
    /// or None when the run is not claimable (done, running elsewhere, parents not done).
    pub fn claim(&self, id: &str, claim: &Claim) -> Result<Option<u32>, StoreError> {
        let t = now();
        let p = claim.provenance;
        let row = self.run(
            sqlx::query(
                "UPDATE runs SET status = 'running', attempt = attempt + 1, owner = $2,
                        heartbeat_at = $3, started_at = $3, finished_at = NULL, wall_s = NULL,
                        error = NULL, host = $4, device = $5, git_rev = $6, dirty = $7,
                        versions = $8, command = $9, job = $10, job_log = $11
                 WHERE id = $1 AND status IN ('pending', 'interrupted')
                   AND NOT EXISTS (SELECT 1 FROM run_parents e JOIN runs r ON r.id = e.parent_id
                                   WHERE e.run_id = $1 AND r.status != 'done')
                 RETURNING attempt",
            )
            .bind(id)
            .bind(claim.owner)
            .bind(t)
            .bind(&p.host)
            .bind(claim.device)
            .bind(&p.git_rev)
            .bind(p.dirty.map(i64::from))
            .bind(&p.versions)
            .bind(&p.command)
            .bind(claim.job.map(|j| j.id))
            .bind(claim.job.map(|j| j.log))
            .fetch_optional(&self.pool),
        )?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u32))
    }

    /// Per-epoch metrics, as the trainer reports them. Re-reporting an epoch (after resuming from
    /// an older checkpoint) overwrites it.
    pub fn record_epoch(&self, id: &str, metrics: &EpochMetrics) -> Result<(), StoreError> {
        let rows: Vec<_> = metrics
            .values()
            .into_iter()
            .map(|(n, v)| serde_json::json!([n, v]))
            .collect();
        // One statement, so one implicit transaction: an epoch's metrics land together.
        self.run(
            sqlx::query(&format!(
                "INSERT INTO metrics (run_id, split, epoch, name, value)
                 SELECT $1, $2, $3, value ->> 0, CAST(value ->> 1 AS DOUBLE PRECISION)
                 FROM {} WHERE true
                 ON CONFLICT (run_id, split, epoch, name) DO UPDATE SET value = excluded.value",
                self.dialect.json_rows("$4")
            ))
            .bind(id)
            .bind(TRAIN_SPLIT)
            .bind(metrics.epoch as i64)
            .bind(serde_json::Value::Array(rows).to_string())
            .execute(&self.pool),
        )?;
        Ok(())
    }

    /// Records a finished run's results and its terminal status in one transaction.
    pub fn finish(&self, id: &str, owner: &str, result: &RunResult) -> Result<(), StoreError> {
        let (status, error) = match &result.diverged {
            None => (RunStatus::Done, None),
            Some(reason) => (RunStatus::Diverged, Some(reason.as_str())),
        };
        let reliability =
            serde_json::to_string(&result.reliability).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let analyses =
            serde_json::to_string(&result.analyses).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let t = now();
            let updated = sqlx::query(
                END_RUN,
            )
            .bind(id)
            .bind(owner)
            .bind(status.as_str())
            .bind(error)
            .bind(t)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                return Err(StoreError::LostClaim(id.to_string()));
            }
            for table in ["class_metrics", "learned_params", "artifacts", "run_details"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE run_id = $1"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM metrics WHERE run_id = $1 AND epoch IS NULL")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for (split, values) in &result.metrics {
                for (name, value) in values {
                    sqlx::query("INSERT INTO metrics (run_id, split, epoch, name, value) VALUES ($1, $2, NULL, $3, $4)")
                        .bind(id)
                        .bind(split)
                        .bind(name)
                        .bind(value)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            sqlx::query(
                "INSERT INTO run_details (run_id, reported_epoch, reliability, analyses) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(result.reported_epoch.map(|e| e as i64))
            .bind(&reliability)
            .bind(&analyses)
            .execute(&mut *tx)
            .await?;
            for c in &result.classes {
                sqlx::query(
                    "INSERT INTO class_metrics (run_id, class, n_train, n_test, correct) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(i64::from(c.class))
                .bind(c.n_train as i64)
                .bind(c.n_test as i64)
                .bind(c.correct as i64)
                .execute(&mut *tx)
                .await?;
            }
            for p in &result.learned {
                sqlx::query("INSERT INTO learned_params (run_id, module, name, value) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (run_id, module, name) DO UPDATE SET value = excluded.value")
                    .bind(id)
                    .bind(&p.module)
                    .bind(&p.name)
                    .bind(p.value)
                    .execute(&mut *tx)
                    .await?;
            }
            for a in &result.artifacts {
                sqlx::query("INSERT INTO artifacts (run_id, kind, path, sha256, bytes) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (run_id, kind, path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes")
                    .bind(id)
                    .bind(&a.kind)
                    .bind(a.path.display().to_string())
                    .bind(&a.sha256)
                    .bind(a.bytes.map(|b| b as i64))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Ends a run this process owns without results (failed or interrupted).
    pub fn release(
        &self,
        id: &str,
        owner: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.run(
            sqlx::query(END_RUN)
                .bind(id)
                .bind(owner)
                .bind(status.as_str())
                .bind(error)
                .bind(now())
                .execute(&self.pool),
        )?;
        Ok(())
    }

    /// Keeps this process's runs from looking abandoned to other hosts.
    pub fn heartbeat(&self, owner: &str) -> Result<(), StoreError> {
        self.run(
            sqlx::query("UPDATE runs SET heartbeat_at = $2 WHERE owner = $1 AND status = 'running'")
                .bind(owner)
                .bind(now())
                .execute(&self.pool),
        )?;
        Ok(())
    }

    /// Every run marked running, with who holds it.
    pub fn holders(&self) -> Result<Vec<Holder>, StoreError> {
        let rows = self.run(
            sqlx::query("SELECT id, owner, heartbeat_at FROM runs WHERE status = 'running' ORDER BY id")
                .fetch_all(&self.pool),
        )?;
        rows.iter()
            .map(|row| {
                Ok(Holder {
                    run: row.try_get("id")?,
                    owner: row.try_get::<Option<String>, _>("owner")?.unwrap_or_default(),
                    heartbeat_at: row.try_get("heartbeat_at")?,
                })
            })
            .collect()
    }

    /// Marks interrupted the runs left `running` by a process that `is_stale` says is dead
    /// (the executor's rule: gone from this host, or silent for too long). Returns how many.
    pub fn recover_stale(&self, is_stale: impl Fn(&Holder) -> bool) -> Result<usize, StoreError> {
        let mut recovered = 0;
        for holder in self.holders()?.iter().filter(|h| is_stale(h)) {
            let done = self.run(
                sqlx::query(
                    "UPDATE runs SET status = 'interrupted', owner = NULL,
                            error = 'process died while running'
                     WHERE id = $1 AND status = 'running' AND owner IS NOT DISTINCT FROM $2",
                )
                .bind(&holder.run)
                .bind(Some(&holder.owner).filter(|o| !o.is_empty()))
                .execute(&self.pool),
            )?;
            recovered += done.rows_affected() as usize;
        }
        Ok(recovered)
    }

    /// `--retry-failed`: failed runs among `ids` become pending again.
    pub fn reset_failed(&self, ids: &[&str]) -> Result<usize, StoreError> {
        let done = self.run(
            sqlx::query(&format!(
                "UPDATE runs SET status = 'pending', error = NULL
                 WHERE status = 'failed' AND id IN ({})",
                self.dialect.json_strings("$1")
            ))
            .bind(ids_json(ids))
            .execute(&self.pool),
        )?;
        Ok(done.rows_affected() as usize)
    }

    /// Deletes runs and everything derived from them (their dependants too), except running
    /// ones. Returns the runs removed with the files they had recorded, for the caller to delete.
    pub fn remove(&self, ids: &[&str]) -> Result<Vec<(String, Vec<std::path::PathBuf>)>, StoreError> {
        let d = self.dialect;
        let in_ids = format!("IN ({})", d.json_strings("$1"));
        self.run(async {
            let mut tx = self.pool.begin().await?;
            // Lock first: a run claimed between the reads below and the delete would be lost.
            sqlx::query(d.lock_runs()).execute(&mut *tx).await?;
            let rows = sqlx::query(&format!(
                "WITH RECURSIVE doomed(id) AS (
                     {}
                     UNION SELECT e.run_id FROM run_parents e JOIN doomed d ON e.parent_id = d.id)
                 SELECT r.id FROM runs r JOIN doomed d ON r.id = d.id WHERE r.status != 'running'",
                d.json_strings("$1")
            ))
            .bind(ids_json(ids))
            .fetch_all(&mut *tx)
            .await?;
            let removed: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            let refs: Vec<&str> = removed.iter().map(String::as_str).collect();
            let files = sqlx::query(&format!(
                "SELECT run_id, path FROM artifacts WHERE run_id {in_ids}"
            ))
            .bind(ids_json(&refs))
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(&format!("DELETE FROM runs WHERE id {in_ids}"))
                .bind(ids_json(&refs))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(removed
                .into_iter()
                .map(|id| {
                    let paths = files
                        .iter()
                        .filter(|f| f.get::<&str, _>(0) == id)
                        .map(|f| std::path::PathBuf::from(f.get::<String, _>(1)))
                        .collect();
                    (id, paths)
                })
                .collect())
        })
    }

    /// Records which scheduler job runs each run and where its output goes: `(run, job, log)`.
    pub fn set_jobs(&self, jobs: &[(String, String, String)]) -> Result<(), StoreError> {
        let rows: Vec<_> = jobs
            .iter()
            .map(|(r, j, l)| serde_json::json!([r, j, l]))
            .collect();
        self.run(
            sqlx::query(&format!(
                "UPDATE runs SET job = j.value ->> 1, job_log = j.value ->> 2
                 FROM (SELECT value FROM {}) AS j WHERE runs.id = j.value ->> 0",
                self.dialect.json_rows("$1")
            ))
            .bind(serde_json::Value::Array(rows).to_string())
            .execute(&self.pool),
        )?;
        Ok(())
    }

    /// Forgets the jobs of `ids` (`repro cancel`): a task whose run no longer names its job
    /// does not requeue itself. Runs not running nor finished are marked interrupted, with
    /// `reason`, so that they show as stopped. Returns the jobs that were recorded.
    pub fn cancel_jobs(&self, ids: &[&str], reason: &str) -> Result<Vec<String>, StoreError> {
        let in_ids = format!("IN ({})", self.dialect.json_strings("$1"));
        let bound = ids_json(ids);
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let jobs: Vec<String> = sqlx::query(&format!(
                "SELECT job FROM runs WHERE job IS NOT NULL AND status IN ('pending', 'running', 'interrupted')
                 AND id {in_ids} ORDER BY job"
            ))
            .bind(&bound)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
            sqlx::query(&format!(
                "UPDATE runs SET job = NULL,
                        status = CASE WHEN status = 'pending' THEN 'interrupted' ELSE status END,
                        error = CASE WHEN status IN ('pending', 'interrupted') THEN $2 ELSE error END
                 WHERE job IS NOT NULL AND id {in_ids}"
            ))
            .bind(&bound)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(jobs)
        })
    }

    /// The job recorded for run `id` and the file its output goes to.
    pub fn job_of(&self, id: &str) -> Result<(Option<String>, Option<String>), StoreError> {
        let rows = self.fetch("SELECT job, job_log FROM runs WHERE id = $1", id)?;
        let row = rows.first().ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// A scheduler runs one job at a time under one id: a run still marked running as claimed
    /// by `job` when that job starts again was left by its previous start (a node that died, a
    /// process killed without warning) and is taken back at once; so is one whose job has
    /// ended. Returns whether it was.
    pub fn take_back_from_job(&self, id: &str, job: &str, why: &str) -> Result<bool, StoreError> {
        let done = self.run(
            sqlx::query(
                "UPDATE runs SET status = 'interrupted', owner = NULL, error = $3
                 WHERE id = $1 AND status = 'running' AND job = $2",
            )
            .bind(id)
            .bind(job)
            .bind(why)
            .execute(&self.pool),
        )?;
        Ok(done.rows_affected() > 0)
    }

    /// Keeps the end of a failed run's job output with the run.
    pub fn set_log_tail(&self, id: &str, tail: &str) -> Result<(), StoreError> {
        self.run(
            sqlx::query("UPDATE runs SET log_tail = $2 WHERE id = $1")
                .bind(id)
                .bind(tail)
                .execute(&self.pool),
        )?;
        Ok(())
    }
}
