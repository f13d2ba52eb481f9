//! `repro run` / `repro sweep`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::cluster::{executor_config, submit, task_command, ExecutorArgs};
use super::common::{DbArg, ManifestArgs};
use super::progress::{Mode, RunProgress};
use super::render::{render_after_run, TABLES_DIR};
use repro::config::load::ManifestKind;
use repro::config::ConfigError;
use repro::exec::slurm::ExecutorKind;
use repro::exec::{execute, provenance, ExecOptions, ExecSummary, FakeOr, Trainer};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub db: DbArg,
    /// Concurrent runs (default: one per device)
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Device slots, e.g. cpu or cuda:0,cuda:1
    #[arg(long, value_delimiter = ',', default_value = "cpu")]
    pub device: Vec<String>,
    /// Run failed runs again (their dependants too)
    #[arg(long)]
    pub retry_failed: bool,
    /// Where each run's folder (checkpoints) goes
    #[arg(long, default_value = "results/runs")]
    pub out: PathBuf,
    /// Take over a run whose owner has sent no heartbeat for this many seconds (runs of a
    /// dead process on this host are taken over at once)
    #[arg(long, value_name = "SECONDS", default_value_t = ExecOptions::default().stale_after_s)]
    pub stale_after: f64,
    /// Print events (started, epoch, finished) and the summary as JSON lines
    #[arg(long)]
    pub json: bool,
    /// Also build the results site when the runs end (into DIR, default results/site)
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = super::report::SITE_DIR)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub executor: ExecutorArgs,
}

/// Returned after Ctrl-C, once running runs are marked interrupted (exit status 130).
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0} runs left to do; run the same command again to resume")]
pub struct Interrupted(pub usize);

impl repro::exit::ExitStatus for Interrupted {
    fn exit_code(&self) -> i32 {
        super::signals::exit_code()
    }
}

/// `real` trains runs without a `fake:` section; `versions` go into each run's provenance
/// (e.g. `[("burn", "0.21.0"), ("backend", "flex")]`).
pub fn cmd_run(
    args: RunArgs,
    kind: ManifestKind,
    real: &dyn Trainer,
    versions: &[(&str, &str)],
) -> anyhow::Result<()> {
    let (m, plan) = args.manifest.plan(kind)?;
    if let Some(reason) = &m.manifest.unsupported {
        return Err(ConfigError::Usage(format!("{} cannot run: {reason}", m.manifest.id)).into());
    }
    let executor = executor_config(&m, &plan.profile, &args.executor)?;
    if executor.kind == ExecutorKind::Slurm {
        // The devices are the compute nodes', which each task checks where it runs.
        let store = args.db.open()?;
        if args.retry_failed {
            let ids: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
            store.register_plan(&plan)?;
            store.reset_failed(&ids)?;
        }
        let task = task_command(&args.db.db, &args.out, &args.device[0], args.stale_after)?;
        return submit(&plan, &store, &executor, &task, args.json);
    }
    // Every device is checked before anything is stored: a run on a device this build or
    // machine cannot drive would only be recorded as failed.
    for device in &args.device {
        let spec: repro::backend::DeviceSpec = device.parse()?;
        spec.check_available()?;
    }
    let opts = ExecOptions {
        jobs: args.jobs.unwrap_or(args.device.len()).max(1),
        devices: args.device.clone(),
        retry_failed: args.retry_failed,
        out_root: args.out.clone(),
        stale_after_s: args.stale_after,
        ..ExecOptions::default()
    };
    let store = args.db.open()?;
    let cancel = super::signals::cancellation();
    let prov = provenance::collect(versions);
    let progress = RunProgress::new(Mode::detect(args.json));
    let summary = execute(&plan, &store, &FakeOr(real), &prov, &opts, cancel, &|e| {
        progress.event(e)
    })?;
    progress.finish();
    let outcome = report(&summary, args.json);
    // The table comes even when runs failed: their cells say so instead of showing numbers.
    match render_after_run(&store, &m, &plan.profile, Path::new(TABLES_DIR)) {
        Ok(Some(table)) if !args.json => println!("\n{table}"),
        Ok(_) => {}
        Err(e) if outcome.is_ok() => return Err(e.into()),
        Err(e) => eprintln!("cannot render the table: {e}"),
    }
    if let Some(dir) = &args.report {
        let templates = repro::render::Templates::new(None)?;
        let experiments = args.manifest.opts.experiments.clone();
        match super::report::write_site(&store, &templates, &[], &[], &experiments, dir) {
            Ok(site) if !args.json => println!("site: {}", site.index.display()),
            Ok(_) => {}
            Err(e) if outcome.is_ok() => return Err(e),
            Err(e) => eprintln!("cannot build the site: {e}"),
        }
    }
    outcome
}

fn report(s: &ExecSummary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::json!({ "event": "summary", "summary": s }));
    } else {
        println!(
            "{} done, {} diverged, {} failed, {} blocked, {} unfinished (ran {} now)",
            s.done, s.diverged, s.failed, s.blocked, s.unfinished, s.ran
        );
    }
    if s.cancelled && s.unfinished > 0 {
        return Err(Interrupted(s.unfinished).into());
    }
    if s.failed + s.blocked > 0 {
        anyhow::bail!(
            "{} runs failed and {} are blocked; see `repro status`, then --retry-failed",
            s.failed,
            s.blocked
        );
    }
    Ok(())
}
