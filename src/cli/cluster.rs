//! The cluster half of the CLI: `run --executor slurm` (submit and return), the hidden `task`
//! that each Slurm array task runs, `cancel` and `logs`.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use clap::Args;
use figment::providers::Serialized;
use figment::Figment;
use serde_json::Value;

use super::common::{print_json, DbArg};
use super::progress::{Mode, RunProgress};
use repro::config::load::ManifestKind;
use repro::config::{find_manifest, ConfigError, LoadedManifest};
use repro::exec::slurm::{self, ExecutorConfig, ExecutorKind, TaskCommand};
use repro::exec::{execute_one, provenance, ExecOptions, FakeOr, Trainer};
use repro::plan::{Plan, PlanNode};
use repro::result::RunStatus;
use repro::store::Store;

/// Executor flags of `run` and `sweep`; each one set replaces the config files' value.
#[derive(Debug, Clone, Args)]
pub struct ExecutorArgs {
    /// Where runs execute: here (local, the default) or as Slurm job arrays (slurm)
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorKind>,
    /// Slurm partition
    #[arg(long, help_heading = "Slurm")]
    pub partition: Option<String>,
    /// Slurm account
    #[arg(long, help_heading = "Slurm")]
    pub account: Option<String>,
    /// Slurm quality of service
    #[arg(long, help_heading = "Slurm")]
    pub qos: Option<String>,
    /// Time limit per run (sbatch --time, e.g. 2:00:00)
    #[arg(long, help_heading = "Slurm")]
    pub time: Option<String>,
    /// Generic resources per run (sbatch --gres, e.g. gpu:1)
    #[arg(long, help_heading = "Slurm")]
    pub gres: Option<String>,
    /// CPUs per run
    #[arg(long, help_heading = "Slurm")]
    pub cpus_per_task: Option<u32>,
    /// Memory per run (sbatch --mem, e.g. 32G)
    #[arg(long, help_heading = "Slurm")]
    pub mem: Option<String>,
    /// At most this many runs of a stage at once
    #[arg(long, help_heading = "Slurm")]
    pub max_concurrent: Option<usize>,
    /// Another sbatch option, passed as it is (repeatable), e.g. --sbatch-arg=--constraint=a100
    #[arg(long = "sbatch-arg", value_name = "OPTION", help_heading = "Slurm")]
    pub sbatch_args: Vec<String>,
}

impl ExecutorArgs {
    /// The flags that were given, as a layer of the `executor:` section.
    fn layer(&self) -> Value {
        let mut layer = serde_json::Map::new();
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                layer.insert(key.to_string(), v);
            }
        };
        set(
            "kind",
            self.executor.map(|k| serde_json::to_value(k).expect("an enum")),
        );
        set("partition", self.partition.clone().map(Value::from));
        set("account", self.account.clone().map(Value::from));
        set("qos", self.qos.clone().map(Value::from));
        set("time", self.time.clone().map(Value::from));
        set("gres", self.gres.clone().map(Value::from));
        set("cpus_per_task", self.cpus_per_task.map(Value::from));
        set("mem", self.mem.clone().map(Value::from));
        set("max_concurrent", self.max_concurrent.map(Value::from));
        if !self.sbatch_args.is_empty() {
            set("sbatch_args", Some(Value::from(self.sbatch_args.clone())));
        }
        Value::Object(layer)
    }
}

/// The user's config file: `$REPRO_CONFIG`, else `$XDG_CONFIG_HOME/repro/config.yaml`, else
/// `~/.config/repro/config.yaml`.
fn user_config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("REPRO_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("repro/config.yaml"))
}

/// The `executor:` section of the user's config file, if there is one.
fn user_layer() -> anyhow::Result<Option<(String, Value)>> {
    let Some(path) = user_config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ConfigError::Io { path, source }.into()),
    };
    let source = path.display().to_string();
    let mut doc: BTreeMap<String, Value> = serde_yaml::from_str(&text)
        .map_err(|e| ConfigError::invalid(&source, e.location().map(|l| l.line()), e.to_string()))?;
    let executor = doc.remove("executor");
    if let Some(key) = doc.keys().next() {
        return Err(ConfigError::invalid(
            &source,
            None,
            format!("unknown key `{key}` (this file holds `executor:`)"),
        )
        .into());
    }
    Ok(executor.map(|v| (format!("{source}: executor"), v)))
}

/// The executor settings for a manifest under a profile, layered: defaults, the user's config
/// file, the manifest, its profile, the flags. Each layer is checked on its own, so an unknown
/// key is reported with the file it is in.
pub fn executor_config(
    m: &LoadedManifest,
    profile: &str,
    flags: &ExecutorArgs,
) -> anyhow::Result<ExecutorConfig> {
    let mut layers = Vec::new();
    layers.extend(user_layer()?);
    if let Some(v) = &m.manifest.executor {
        layers.push((format!("{}: executor", m.source()), v.clone()));
    }
    if let Some(v) = m.manifest.profiles.get(profile).and_then(|p| p.executor.clone()) {
        layers.push((format!("{}: profiles.{profile}.executor", m.source()), v));
    }
    layers.push(("command line".to_string(), flags.layer()));
    let mut figment = Figment::from(Serialized::defaults(ExecutorConfig::default()));
    for (source, value) in layers {
        serde_json::from_value::<ExecutorConfig>(value.clone())
            .map_err(|e| ConfigError::invalid(source.clone(), m.line_of("executor"), e.to_string()))?;
        figment = figment.merge(Serialized::defaults(value));
    }
    Ok(figment
        .extract()
        .map_err(|e| ConfigError::invalid("executor settings", None, e.to_string()))?)
}

/// What each task of a submission runs: this binary, with the store made absolute for tasks
/// that start in another folder.
pub fn task_command(
    db: &str,
    out_root: &Path,
    device: &str,
    stale_after_s: f64,
) -> anyhow::Result<TaskCommand> {
    Ok(TaskCommand {
        program: std::env::current_exe()?,
        db: absolute_db(db),
        out_root: out_root.to_path_buf(),
        device: device.to_string(),
        stale_after_s,
    })
}

/// `repro run --executor slurm`: registers the plan, submits its runs and returns.
pub fn submit(
    plan: &Plan,
    store: &Store,
    cfg: &ExecutorConfig,
    task: &TaskCommand,
    json: bool,
) -> anyhow::Result<()> {
    if store.is_local_file() {
        eprintln!(
            "note: a SQLite store is safe only while every task runs on this machine; on a cluster use --db postgres://…"
        );
    }
    store.register_plan(plan)?;
    let submission = slurm::submit(plan, store, cfg, task)?;
    if json {
        return print_json(&submission);
    }
    for j in &submission.jobs {
        let after = if j.dependency.is_empty() {
            String::new()
        } else {
            format!(", after {}", j.dependency)
        };
        println!("{}: job {} ({} runs{after})", j.stage, j.job, j.runs);
    }
    let queued: usize = submission.jobs.iter().map(|j| j.runs).sum();
    println!(
        "submitted {queued} runs in {} jobs; {} already done or queued, {} blocked by failed runs. \
         `repro status {}` shows progress.",
        submission.jobs.len(),
        submission.skipped,
        submission.blocked,
        plan.manifest
    );
    Ok(())
}

/// A SQLite path relative to here, made absolute for tasks that start elsewhere.
fn absolute_db(db: &str) -> String {
    if db.contains("://") && !db.starts_with("sqlite://") {
        return db.to_string();
    }
    let path = db.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    match std::path::absolute(path) {
        Ok(p) => format!("sqlite://{}", p.display()),
        Err(_) => db.to_string(),
    }
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    /// Run id
    pub run: String,
    #[command(flatten)]
    pub db: DbArg,
    /// Where the run's folder (checkpoints) goes
    #[arg(long, default_value = "results/runs")]
    pub out: PathBuf,
    /// Device of this task
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, value_name = "SECONDS", default_value_t = ExecOptions::default().stale_after_s)]
    pub stale_after: f64,
    /// Requeues after the run's process was killed without warning
    #[arg(long, default_value_t = 3)]
    pub max_requeues: u32,
    /// The file Slurm writes this task's output to
    #[arg(long)]
    pub log: Option<String>,
    /// Train in this process (what the supervising `task` starts)
    #[arg(long)]
    pub worker: bool,
}

/// This Slurm task's id: `12_3` for array task 3 of job 12.
fn slurm_job() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// The warning signal Slurm sends the batch step, passed on to the worker.
static FORWARD: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_usr1(signal: libc::c_int) {
    FORWARD.store(signal, Ordering::SeqCst);
}

/// `repro task RUN`: what a Slurm array task runs. It supervises a worker process that trains
/// the run, so that whatever ends the worker — a finished run, the time-limit warning, scancel,
/// SIGKILL — the run is left right in the store and requeued when it should run again.
pub fn cmd_task(args: TaskArgs, real: &dyn Trainer, versions: &[(&str, &str)]) -> anyhow::Result<()> {
    if args.worker {
        return work(args, real, versions);
    }
    let status = supervise()?;
    settle(&args, status)
}

/// Runs this command again as the worker and waits for it, passing on the time-limit warning.
fn supervise() -> anyhow::Result<std::process::ExitStatus> {
    // scancel and preemption signal every process of the job, the worker too; only the
    // time-limit warning (sbatch --signal=B:USR1) comes to this one alone and is passed on.
    // SAFETY: the handlers only store to atomics.
    unsafe {
        libc::signal(
            libc::SIGUSR1,
            on_usr1 as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .arg("--worker")
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let signal = FORWARD.swap(0, Ordering::SeqCst);
        if signal != 0 {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, signal) };
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// After the worker: requeue this task when its run should go on (stopped by a signal and
/// checkpointed, or killed without warning), keep the output's tail when it failed, and exit
/// with the worker's status otherwise.
fn settle(args: &TaskArgs, status: std::process::ExitStatus) -> anyhow::Result<()> {
    let job = slurm_job();
    let store = args.db.open_existing()?;
    let (recorded_job, log) = store.job_of(&args.run)?;
    // A running run names the job that claimed it; `repro cancel` clears it.
    let still_mine = job.is_some() && recorded_job == job;
    let requeue = |why: &str| -> anyhow::Result<()> {
        let job = job.as_deref().unwrap_or_default();
        println!("repro task: {why}; requeueing job {job}");
        slurm::requeue(job)?;
        Ok(())
    };
    if let Some(signal) = status.signal() {
        let why = format!("the worker was killed by signal {signal}");
        if let Some(job) = &job {
            store.take_back_from_job(&args.run, job, &why)?;
        }
        let restarts: u32 = std::env::var("SLURM_RESTART_COUNT")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if still_mine && restarts < args.max_requeues {
            return requeue(&why);
        }
        keep_log_tail(&store, &args.run, log.as_deref());
        anyhow::bail!(
            "run {}: {why}; left interrupted after {restarts} requeues",
            args.run
        );
    }
    match status.code().unwrap_or(1) {
        0 => Ok(()),
        // 128 + the signal that stopped the run, checkpointed.
        code if code > 128 && still_mine => requeue("the run was stopped by a signal and checkpointed"),
        code => {
            if code <= 128 {
                keep_log_tail(&store, &args.run, log.as_deref());
            }
            std::process::exit(code)
        }
    }
}

/// The last lines of a job's output, kept with a run that failed.
const LOG_TAIL_BYTES: u64 = 8 * 1024;

fn keep_log_tail(store: &Store, run: &str, log: Option<&str>) {
    let Some(tail) = log.and_then(|path| tail_of(Path::new(path), LOG_TAIL_BYTES).ok()) else {
        return;
    };
    if let Err(e) = store.set_log_tail(run, &tail) {
        eprintln!("warning: cannot keep the job log's tail in the store: {e}");
    }
}

fn tail_of(path: &Path, bytes: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(bytes)))?;
    let mut text = String::new();
    file.read_to_string(&mut text).or_else(|_| {
        let mut raw = Vec::new();
        file.seek(SeekFrom::Start(len.saturating_sub(bytes)))?;
        file.read_to_end(&mut raw)?;
        text = String::from_utf8_lossy(&raw).into_owned();
        Ok::<_, std::io::Error>(0)
    })?;
    Ok(text)
}

/// The worker: claims the run and trains it, as the local executor would.
fn work(args: TaskArgs, real: &dyn Trainer, versions: &[(&str, &str)]) -> anyhow::Result<()> {
    let store = args.db.open_existing()?;
    let id = store.resolve_prefix(&args.run)?;
    if let Some(job) = slurm_job() {
        let why =
            "its Slurm job started again before the run was recorded (node failure or a killed process)";
        if store.take_back_from_job(&id, &job, why)? {
            println!("repro task: took back run {id}: {why}");
        }
    }
    let plan = single_run_plan(&store, &id)?;
    let opts = ExecOptions {
        devices: vec![args.device.clone()],
        out_root: args.out.clone(),
        stale_after_s: args.stale_after,
        job: slurm_job().map(|job| (job, args.log.clone().unwrap_or_default())),
        ..ExecOptions::default()
    };
    let cancel = super::signals::cancellation();
    let prov = provenance::collect(versions);
    let progress = RunProgress::new(Mode::Lines);
    let mut told = String::new();
    loop {
        let outcome = execute_one(&plan, &store, &FakeOr(real), &prov, &opts, cancel.clone(), &|e| {
            progress.event(e)
        })?;
        match outcome {
            Some((RunStatus::Done | RunStatus::Diverged, _)) => break,
            Some((RunStatus::Interrupted, _)) => return Err(TaskInterrupted(id).into()),
            Some((status, error)) => {
                anyhow::bail!("run {id} {}: {}", status.as_str(), error.unwrap_or_default())
            }
            None => match unclaimable(&store, &plan, &opts)? {
                Wait::Finished => break,
                Wait::Never(why) => anyhow::bail!("run {id} cannot run: {why}"),
                Wait::For(why) => {
                    // Another submission's task holds it or its parents: this one waits, so
                    // that the runs queued after it here do not start before it is done.
                    if why != told {
                        println!("repro task: run {id} waits: {why}");
                        told = why;
                    }
                    if cancel.load(Ordering::SeqCst) {
                        return Err(TaskInterrupted(id).into());
                    }
                    std::thread::sleep(WAIT_POLL);
                }
            },
        }
    }
    progress.finish();
    Ok(())
}

/// How often a task whose run is held elsewhere looks again.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Returned when the worker's run was stopped by a signal and checkpointed (exit 128 + signal).
#[derive(Debug, thiserror::Error)]
#[error("run {0} stopped by a signal; it is checkpointed and resumes when its task starts again")]
pub struct TaskInterrupted(String);

impl repro::exit::ExitStatus for TaskInterrupted {
    fn exit_code(&self) -> i32 {
        super::signals::exit_code()
    }
}

enum Wait {
    /// Done (by another process) or diverged: nothing left to do.
    Finished,
    /// Held by a live process, or its parents are not done yet.
    For(String),
    /// It failed elsewhere, or a parent did.
    Never(String),
}

/// Why the run of a single-run plan could not be claimed. A holder that went silent is taken
/// over (the next claim gets the run).
fn unclaimable(store: &Store, plan: &Plan, opts: &ExecOptions) -> anyhow::Result<Wait> {
    let ids: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
    let run = ids[ids.len() - 1];
    store.recover_stale(|h| h.run == run && provenance::staleness(h, opts.stale_after_s).is_some())?;
    let statuses = store.statuses(&ids)?;
    let status_of = |id: &str| statuses.get(id).copied();
    Ok(match status_of(run) {
        Some(RunStatus::Done | RunStatus::Diverged) => Wait::Finished,
        Some(RunStatus::Failed) => Wait::Never("it failed (see repro show; --retry-failed)".into()),
        None => Wait::Never("it is no longer in the store".into()),
        Some(RunStatus::Running) => Wait::For("another process is running it".into()),
        Some(RunStatus::Pending | RunStatus::Interrupted) => {
            let parents = &ids[..ids.len() - 1];
            let failed = parents
                .iter()
                .find(|p| matches!(status_of(p), Some(RunStatus::Failed | RunStatus::Diverged) | None));
            match failed {
                Some(p) => Wait::Never(format!("its parent {p} did not finish")),
                None => Wait::For("its parents are not done yet".into()),
            }
        }
    })
}

/// The run and its parents as a plan of their own, from what the store has: a task does not
/// need the manifest, which may have changed since the submission.
fn single_run_plan(store: &Store, id: &str) -> anyhow::Result<Plan> {
    let (stage, seed, config_json, parent_ids) = store.run_definition(id)?;
    let mut nodes: Vec<PlanNode> = parent_ids
        .iter()
        .map(|p| PlanNode {
            id: p.clone(),
            stage: String::new(),
            labels: BTreeMap::new(),
            seed: 0,
            config: Default::default(),
            config_json: String::new(),
            parents: Vec::new(),
            parent_ids: Vec::new(),
        })
        .collect();
    let config = serde_json::from_str(&config_json)
        .map_err(|e| anyhow::anyhow!("run {id}: its stored config does not read as a run config: {e}"))?;
    nodes.push(PlanNode {
        id: id.to_string(),
        stage: stage.clone(),
        labels: BTreeMap::new(),
        seed,
        config,
        config_json,
        parents: (0..parent_ids.len()).collect(),
        parent_ids,
    });
    Ok(Plan {
        manifest: String::new(),
        profile: String::new(),
        stages: vec![stage],
        nodes,
        members: Vec::new(),
        unsupported: None,
    })
}

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// A manifest id (all its runs under --profile), or run ids (unique prefixes)
    #[arg(required = true)]
    pub targets: Vec<String>,
    #[arg(long, default_value = repro::config::manifest::PAPER_PROFILE)]
    pub profile: String,
    /// Folder holding the manifests
    #[arg(long, default_value = "experiments")]
    pub experiments: PathBuf,
    #[command(flatten)]
    pub db: DbArg,
}

/// `repro cancel`: cancels the Slurm jobs of runs and marks the runs, so that their tasks do
/// not requeue them; running ones stop at the next batch, checkpointed, and end interrupted.
pub fn cmd_cancel(args: CancelArgs) -> anyhow::Result<()> {
    let store = args.db.open_existing()?;
    let mut ids = Vec::new();
    for target in &args.targets {
        match store.resolve_prefix(target) {
            Ok(id) => ids.push(id),
            Err(run_error) => {
                let Ok(m) = find_manifest(&args.experiments, target, ManifestKind::Any) else {
                    return Err(run_error.into());
                };
                let runs = store.manifest_runs(&m.manifest.id, &args.profile)?;
                ids.extend(runs.into_iter().map(|r| r.run_id));
            }
        }
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let jobs = store.cancel_jobs(&refs, "cancelled with repro cancel")?;
    slurm::cancel(&jobs)?;
    println!("cancelled {} jobs of {} runs", jobs.len(), ids.len());
    Ok(())
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Run id (a unique prefix is enough)
    pub run: String,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    #[command(flatten)]
    pub db: DbArg,
}

/// `repro logs RUN`: the output of the run's Slurm job, or what the store kept of it.
pub fn cmd_logs(args: LogsArgs) -> anyhow::Result<()> {
    let store = args.db.open_read_only()?;
    let detail = store.run_detail(&args.run)?;
    let (_, log) = store.job_of(&detail.id)?;
    let text = match log.as_deref().map(std::fs::read_to_string) {
        Some(Ok(text)) => text,
        Some(Err(e)) => match detail.provenance.get("log_tail").and_then(Value::as_str) {
            Some(tail) => {
                eprintln!(
                    "note: {} is unreadable ({e}); showing the tail the store kept",
                    log.unwrap_or_default()
                );
                tail.to_string()
            }
            None => return Err(ConfigError::Usage(format!("{}: {e}", log.unwrap_or_default())).into()),
        },
        None => {
            return Err(ConfigError::Usage(format!(
                "run {} has no job output: it did not run under Slurm",
                detail.id
            ))
            .into())
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let from = args.tail.map_or(0, |n| lines.len().saturating_sub(n));
    for line in &lines[from..] {
        println!("{line}");
    }
    Ok(())
}
