//! The Slurm executor: a plan becomes one job array per stage, submitted with `sbatch` and
//! chained by Slurm dependencies; each array task runs `repro task RUN`, which claims its run in
//! the (shared) store, trains it and records it. Submitting returns at once; the store and
//! Slurm's queue say how it goes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::plan::{classify, NodeState, Plan};
use crate::store::{Store, StoreError};

/// Where runs execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ExecutorKind {
    /// In this process, on this machine's devices.
    #[default]
    Local,
    /// As Slurm job arrays; the command submits and returns.
    Slurm,
}

/// Executor settings: the `executor:` section of the user's config file, of the manifest and
/// of its profile, then command-line flags, each layer over the one before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecutorConfig {
    pub kind: ExecutorKind,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Time limit per run, in any form sbatch takes (`2:00:00`, `1-00:00:00`).
    pub time: Option<String>,
    /// Generic resources per run, e.g. `gpu:1`.
    pub gres: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// Memory per run, e.g. `32G`.
    pub mem: Option<String>,
    /// At most this many runs of a stage at once (the array's `%` limit).
    pub max_concurrent: Option<usize>,
    /// More sbatch options, passed as they are.
    pub sbatch_args: Vec<String>,
    /// Seconds before the time limit at which a run is told to checkpoint and requeue itself.
    pub signal_before_s: u64,
    /// How often a run killed without warning (SIGKILL, a crashed process) is requeued before
    /// it is left interrupted.
    pub max_requeues: u32,
    /// Where job scripts and job output go.
    pub dir: PathBuf,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            kind: ExecutorKind::Local,
            partition: None,
            account: None,
            qos: None,
            time: None,
            gres: None,
            cpus_per_task: None,
            mem: None,
            max_concurrent: None,
            sbatch_args: Vec::new(),
            signal_before_s: 300,
            max_requeues: 3,
            dir: PathBuf::from("results/slurm"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("cannot run `{program}` ({source}); is Slurm installed and on PATH?")]
    Missing { program: String, source: std::io::Error },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{submitted} of the runs to submit are queued and recorded; submitting the rest failed (run the same command again to submit them): {source}")]
    Partial {
        submitted: usize,
        source: Box<SlurmError>,
    },
}

impl crate::exit::ExitStatus for SlurmError {
    fn exit_code(&self) -> i32 {
        match self {
            SlurmError::Store(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

/// What a task needs besides its run id, written into every job script.
#[derive(Debug, Clone)]
pub struct TaskCommand {
    /// This binary, which the nodes must reach at the same path (a shared file system).
    pub program: PathBuf,
    pub db: String,
    pub out_root: PathBuf,
    pub device: String,
    pub stale_after_s: f64,
}

/// One stage's job array.
#[derive(Debug, Clone, Serialize)]
pub struct StageJob {
    pub stage: String,
    pub job: String,
    pub runs: usize,
    /// `afterok:12` / `aftercorr:12` …, empty when it waits for nothing.
    pub dependency: String,
    pub script: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Submission {
    pub jobs: Vec<StageJob>,
    /// Runs already done, or queued or running under an earlier submission.
    pub skipped: usize,
    /// Runs that cannot run: a parent failed.
    pub blocked: usize,
}

/// Runs `program args`, returning its standard output; a non-zero exit is an error with its
/// standard error.
fn slurm_command(program: &str, args: &[String]) -> Result<String, SlurmError> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| SlurmError::Missing {
            program: program.to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(SlurmError::Failed {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The state of each of this user's jobs Slurm still lists (`12_3` → `RUNNING`), array tasks
/// one by one.
pub fn queue() -> Result<HashMap<String, String>, SlurmError> {
    let args = ["-h", "-r", "--me", "-o", "%i %T"].map(String::from);
    Ok(slurm_command("squeue", &args)?
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(id, state)| (id.to_string(), state.trim().to_string()))
        .collect())
}

/// Cancels jobs (`12_3`, `12`).
pub fn cancel(jobs: &[String]) -> Result<(), SlurmError> {
    if jobs.is_empty() {
        return Ok(());
    }
    slurm_command("scancel", jobs).map(drop)
}

/// Puts a running job back in the queue; Slurm stops it and starts it again later.
pub fn requeue(job: &str) -> Result<(), SlurmError> {
    slurm_command("scontrol", &["requeue".to_string(), job.to_string()]).map(drop)
}

/// The most tasks one job array may have here: Slurm's `MaxArraySize` (task ids run from 0 to
/// MaxArraySize - 1); 1001 by default.
fn max_array_tasks() -> Result<usize, SlurmError> {
    let config = slurm_command("scontrol", &["show".to_string(), "config".to_string()])?;
    let size = config
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "MaxArraySize")
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(1001);
    Ok(size.max(1))
}

/// A value as one shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The `#SBATCH` lines of a stage's script.
fn directives(cfg: &ExecutorConfig, name: &str, output: &Path) -> Vec<String> {
    let mut lines = vec![
        format!("--job-name={name}"),
        format!("--output={}", output.display()),
        // A requeued run appends to the output of its earlier starts.
        "--open-mode=append".to_string(),
        "--requeue".to_string(),
        format!("--signal=B:USR1@{}", cfg.signal_before_s),
    ];
    let optional = [
        ("partition", cfg.partition.clone()),
        ("account", cfg.account.clone()),
        ("qos", cfg.qos.clone()),
        ("time", cfg.time.clone()),
        ("gres", cfg.gres.clone()),
        ("cpus-per-task", cfg.cpus_per_task.map(|c| c.to_string())),
        ("mem", cfg.mem.clone()),
    ];
    lines.extend(
        optional
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("--{k}={v}"))),
    );
    lines.extend(cfg.sbatch_args.iter().cloned());
    lines.into_iter().map(|l| format!("#SBATCH {l}")).collect()
}

fn write(path: &Path, text: &str) -> Result<(), SlurmError> {
    std::fs::write(path, text).map_err(|source| SlurmError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The output file of the running task as a shell word: the `%A_%a` of sbatch's pattern
/// filled in from the task's environment.
fn task_log(output: &Path) -> String {
    let pattern = output.display().to_string();
    let (before, after) = pattern.split_once("%A_%a").unwrap_or((&pattern, ""));
    format!(
        "{}\"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\"{}",
        shell_quote(before),
        shell_quote(after)
    )
}

/// The job script of a stage: task i runs the run on line i + 1 of `runs_file`.
fn script(cfg: &ExecutorConfig, task: &TaskCommand, name: &str, runs_file: &Path, output: &Path) -> String {
    let mut text = String::from("#!/bin/bash\n");
    for line in directives(cfg, name, output) {
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(&format!(
        "# Written by repro: array task i runs the run on line i + 1 of {runs}.\n\
         set -eu\n\
         run=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {runs})\n\
         export REPRO_DB={db}\n\
         exec {program} task \"$run\" --out {out} --device {device} --stale-after {stale} \\\n    --max-requeues {requeues} --log {log}\n",
        runs = shell_quote(&runs_file.display().to_string()),
        db = shell_quote(&task.db),
        program = shell_quote(&task.program.display().to_string()),
        out = shell_quote(&absolute(&task.out_root).display().to_string()),
        device = shell_quote(&task.device),
        stale = task.stale_after_s,
        requeues = cfg.max_requeues,
        log = task_log(output),
    ));
    text
}

/// How a stage's array waits for the runs it needs: `aftercorr` on one parent array when task
/// i needs exactly task i of it (the usual pre-train → fine-tune chain, so each fine-tune
/// starts as soon as its own parent is done), else `afterok` on every job holding a parent.
fn dependency(
    plan: &Plan,
    runs: &[usize],
    submitted: &HashMap<usize, (String, usize)>,
    held: &HashMap<usize, String>,
) -> String {
    let mut parent_jobs: Vec<String> = Vec::new();
    let mut corresponding: Option<String> = None;
    let mut one_to_one = true;
    for (i, &node) in runs.iter().enumerate() {
        let parents = &plan.nodes[node].parents;
        for p in parents {
            let job = match (submitted.get(p), held.get(p)) {
                (Some((job, index)), _) => {
                    let same = corresponding.get_or_insert_with(|| job.clone()) == job;
                    one_to_one &= same && *index == i && parents.len() == 1;
                    job.clone()
                }
                (None, Some(job)) => {
                    one_to_one = false;
                    job.clone()
                }
                (None, None) => continue,
            };
            if !parent_jobs.contains(&job) {
                parent_jobs.push(job);
            }
        }
        one_to_one &= !parents.is_empty();
    }
    match corresponding {
        Some(job) if one_to_one => format!("aftercorr:{job}"),
        _ if parent_jobs.is_empty() => String::new(),
        _ => format!("afterok:{}", parent_jobs.join(":")),
    }
}

/// What every array of one submission shares.
struct Submitter<'a> {
    plan: &'a Plan,
    cfg: &'a ExecutorConfig,
    task: &'a TaskCommand,
    /// Scripts, run lists and job output of this submission.
    dir: PathBuf,
}

impl Submitter<'_> {
    /// Writes the script and run list of one array (`name`: the stage, or `stage.part`) and
    /// submits it, waiting for the jobs of its runs' parents (`submitted` now, `held` before).
    fn submit_array(
        &self,
        name: &str,
        runs: &[usize],
        submitted: &HashMap<usize, (String, usize)>,
        held: &HashMap<usize, String>,
    ) -> Result<StageJob, SlurmError> {
        let runs_file = self.dir.join(format!("{name}.runs"));
        let lines: Vec<&str> = runs.iter().map(|&i| self.plan.nodes[i].id.as_str()).collect();
        write(&runs_file, &(lines.join("\n") + "\n"))?;
        let output = self.dir.join(format!("{name}-%A_%a.out"));
        let job_name = format!("repro-{}-{name}", self.plan.manifest);
        let script_path = self.dir.join(format!("{name}.sbatch"));
        write(
            &script_path,
            &script(self.cfg, self.task, &job_name, &runs_file, &output),
        )?;
        let dependency = dependency(self.plan, runs, submitted, held);
        let mut array = format!("--array=0-{}", runs.len() - 1);
        if let Some(cap) = self.cfg.max_concurrent {
            array.push_str(&format!("%{cap}"));
        }
        let mut args = vec!["--parsable".to_string(), array];
        if !dependency.is_empty() {
            // A parent that fails makes Slurm drop the waiting tasks instead of keeping them
            // queued forever; their runs stay pending in the store.
            args.push(format!("--dependency={dependency}"));
            args.push("--kill-on-invalid-dep=yes".to_string());
        }
        args.push(script_path.display().to_string());
        let out = slurm_command("sbatch", &args)?;
        // `--parsable` prints `jobid` or `jobid;cluster`.
        let job = out.trim().split(';').next().unwrap_or_default().to_string();
        Ok(StageJob {
            stage: name.to_string(),
            job,
            runs: runs.len(),
            dependency,
            script: script_path,
        })
    }
}

/// Submits every run of `plan` that is to run and not already queued: one job array per stage,
/// in dependency order, each waiting for the arrays (or earlier jobs) holding its runs'
/// parents. Records each run's job and output file in the store as soon as its array is
/// queued. The plan must be registered.
pub fn submit(
    plan: &Plan,
    store: &Store,
    cfg: &ExecutorConfig,
    task: &TaskCommand,
) -> Result<Submission, SlurmError> {
    let ids: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
    // The store first, then the queue: a job recorded by the time the store is read was
    // submitted before, so Slurm lists it unless it has ended. (The other order took another
    // submission's brand-new job for a dead one.)
    let stored = store.manifest_runs(&plan.manifest, &plan.profile)?;
    let in_queue = queue()?;
    let jobs: HashMap<&str, &str> = stored
        .iter()
        .filter_map(|r| Some((r.run_id.as_str(), r.job.as_deref()?)))
        .collect();
    // A run marked running whose job Slurm no longer lists died with it: runnable again. Only
    // while it still names that job: a later submission may have given it a new one since.
    for r in stored
        .iter()
        .filter(|r| r.status == crate::result::RunStatus::Running)
    {
        if let Some(job) = r.job.as_deref().filter(|j| !in_queue.contains_key(*j)) {
            store.take_back_from_job(&r.run_id, job, "its Slurm job ended without recording it")?;
        }
    }
    let statuses = store.statuses(&ids)?;
    let states = classify(plan, &statuses);
    // Runs queued or running under an earlier submission stay with their job.
    let held: HashMap<usize, String> = plan
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let job = *jobs.get(n.id.as_str())?;
            let waiting = matches!(states[i], NodeState::ToRun | NodeState::Running);
            (waiting && in_queue.contains_key(job)).then(|| (i, job.to_string()))
        })
        .collect();
    let mut by_stage: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut summary = Submission::default();
    for (i, state) in states.iter().enumerate() {
        match state {
            NodeState::ToRun if !held.contains_key(&i) => {
                let stage = plan.stages.iter().position(|s| *s == plan.nodes[i].stage);
                by_stage.entry(stage.unwrap_or(usize::MAX)).or_default().push(i);
            }
            NodeState::Blocked => summary.blocked += 1,
            _ => summary.skipped += 1,
        }
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let dir = absolute(&cfg.dir).join(format!("{}-{}-{stamp}", plan.manifest, plan.profile));
    std::fs::create_dir_all(&dir).map_err(|source| SlurmError::Io {
        path: dir.clone(),
        source,
    })?;
    let submitter = Submitter { plan, cfg, task, dir };
    // A stage larger than the cluster allows one array to be goes in several arrays, cut at
    // the same places in every stage, so that a 1:1 chain of stages stays `aftercorr`.
    let chunk = max_array_tasks()?;
    let mut submitted: HashMap<usize, (String, usize)> = HashMap::new();
    for stage_runs in by_stage.values() {
        let stage = plan.nodes[stage_runs[0]].stage.clone();
        let chunks = stage_runs.len().div_ceil(chunk);
        for (part, runs) in stage_runs.chunks(chunk).enumerate() {
            let name = match chunks {
                1 => stage.clone(),
                _ => format!("{stage}.{part}"),
            };
            let job =
                submitter
                    .submit_array(&name, runs, &submitted, &held)
                    .map_err(|source| match submitted.len() {
                        0 => source,
                        submitted => SlurmError::Partial {
                            submitted,
                            source: Box::new(source),
                        },
                    })?;
            let recorded: Vec<(String, String, String)> = runs
                .iter()
                .enumerate()
                .map(|(k, &i)| {
                    let log = submitter.dir.join(format!("{name}-{}_{k}.out", job.job));
                    (
                        plan.nodes[i].id.clone(),
                        format!("{}_{k}", job.job),
                        log.display().to_string(),
                    )
                })
                .collect();
            store.set_jobs(&recorded)?;
            for (k, &i) in runs.iter().enumerate() {
                submitted.insert(i, (job.job.clone(), k));
            }
            summary.jobs.push(StageJob {
                stage: stage.clone(),
                ..job
            });
        }
    }
    Ok(summary)
}
