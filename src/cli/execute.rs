//! `repro run` / `repro sweep`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::common::{DbArg, ManifestArgs};
use super::render::{render_after_run, TABLES_DIR};
use repro::config::load::ManifestKind;
use repro::config::ConfigError;
use repro::exec::{execute, provenance, Event, ExecOptions, ExecSummary, FakeOr, Trainer};

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
    /// Print events and the summary as JSON lines
    #[arg(long)]
    pub json: bool,
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
        ..ExecOptions::default()
    };
    let store = args.db.open()?;
    let cancel = super::signals::cancellation();
    let prov = provenance::collect(versions);
    let progress = Progress::new(args.json);
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

/// JSON lines for scripts, a progress bar on a terminal, nothing otherwise (failures are
/// always reported on stderr).
struct Progress {
    json: bool,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(json: bool) -> Self {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} runs  {elapsed}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Self { json, bar }
    }

    fn event(&self, e: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(e) {
                println!("{line}");
            }
            return;
        }
        match e {
            Event::Planned { to_run, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(*to_run as u64);
                }
            }
            Event::Started { run, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("started {run}"));
                }
            }
            Event::Finished {
                run, status, error, ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                if let Some(err) = error {
                    let line = format!("{run}: {status}: {err}");
                    match &self.bar {
                        Some(bar) => bar.println(&line),
                        None => eprintln!("{line}"),
                    }
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
