//! `repro` subcommands of the orchestration half. Each takes its parsed arguments and returns
//! anyhow::Result; `exit_code` maps errors to the process status (2: usage or input).

mod cluster;
mod common;
mod db;
mod execute;
mod inspect;
mod progress;
mod render;
mod report;
mod rm;
mod signals;
mod train;
mod verify;

use clap::{Parser, Subcommand};

use cluster::{cmd_cancel, cmd_logs, cmd_task, CancelArgs, LogsArgs, TaskArgs, TaskInterrupted};
use db::{cmd_db, DbArgs};
use execute::{cmd_run, Interrupted, RunArgs};
use inspect::{
    cmd_config, cmd_list, cmd_plan, cmd_show, cmd_status, ConfigArgs, ListArgs, PlanArgs, ShowArgs,
    StatusArgs,
};
use render::{cmd_render, RenderArgs};
use report::{cmd_report, ReportArgs};
use rm::{cmd_rm, RmArgs};
use train::{cmd_train, FolderBusy, TrainArgs};
use verify::{cmd_verify, Mismatch, Unusable, VerifyArgs};

use repro::config::load::ManifestKind;
use repro::exit::ExitStatus;

#[derive(Debug, Parser)]
#[command(
    name = "repro",
    version,
    about = "Reproduce the tables of 'Adaptive Parametric Activation' (APA, AGLU)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the fully resolved config of each run of a manifest
    Config(ConfigArgs),
    /// Dry run: runs done / to run / blocked per stage, and a cost estimate
    Plan(PlanArgs),
    /// Run a paper table's manifest (experiments/NAME.yaml)
    Run(RunArgs),
    /// Run a named sweep (experiments/sweeps/NAME.yaml)
    Sweep(RunArgs),
    /// Progress of one manifest, or of every manifest in the store
    Status(StatusArgs),
    /// Config, provenance and results of one run
    Show(ShowArgs),
    /// Manifests on disk with done/total runs
    List(ListArgs),
    /// Delete runs (and their dependants) from the store
    Rm(RmArgs),
    /// Write paper tables (Markdown, LaTeX, CSV, JSON) and figures from the results store
    Render(RenderArgs),
    /// Build the results site: every table, figure and run as static HTML pages
    ///
    /// The site needs no server and no network: open its index.html from disk, or publish the
    /// folder as it is.
    Report(ReportArgs),
    /// Train one run from a run-config file and print its result
    Train(TrainArgs),
    /// Manage results stores: copy runs between SQLite and PostgreSQL
    Db(DbArgs),
    /// Cancel the Slurm jobs of a manifest's runs, or of single runs
    Cancel(CancelArgs),
    /// Print the output of a run's Slurm job
    Logs(LogsArgs),
    /// Run one run as a Slurm array task (what `run --executor slurm` submits)
    #[command(hide = true)]
    Task(TaskArgs),
    /// Check our models against reference PyTorch fixtures (model, weights, input, logits).
    ///
    /// Prints the largest absolute logit difference per check; exits 1 when one is over the
    /// fixture's tolerance, 2 when a fixture or its weights are unusable.
    Verify(VerifyArgs),
}

/// Library versions recorded in every run's provenance, as Cargo.lock pins them (build.rs).
const VERSIONS: [(&str, &str); 1] = [("burn", env!("REPRO_BURN_VERSION"))];

/// Runs a command; `real` is the trainer for runs without a `fake:` section.
pub fn dispatch(cli: Cli, real: &dyn repro::exec::Trainer) -> anyhow::Result<()> {
    match cli.command {
        Command::Config(a) => cmd_config(a),
        Command::Plan(a) => cmd_plan(a),
        Command::Run(a) => cmd_run(a, ManifestKind::Table, real, &VERSIONS),
        Command::Sweep(a) => cmd_run(a, ManifestKind::Sweep, real, &VERSIONS),
        Command::Status(a) => cmd_status(a),
        Command::Show(a) => cmd_show(a),
        Command::List(a) => cmd_list(a),
        Command::Rm(a) => cmd_rm(a),
        Command::Render(a) => cmd_render(a),
        Command::Report(a) => cmd_report(a),
        Command::Train(a) => cmd_train(a),
        Command::Db(a) => cmd_db(a),
        Command::Cancel(a) => cmd_cancel(a),
        Command::Logs(a) => cmd_logs(a),
        Command::Task(a) => cmd_task(a, real, &VERSIONS),
        Command::Verify(a) => cmd_verify(a),
    }
}

/// The error and its causes on one line. Many errors repeat their cause in their own text
/// (sqlx's "error returned from database: …"), so a cause already said is left out.
pub fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain().map(ToString::to_string) {
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Tries each error type against each error in the chain.
macro_rules! first_status {
    ($err:expr, $($ty:ty),+ $(,)?) => {
        $err.chain().find_map(|e| {
            None$(.or_else(|| e.downcast_ref::<$ty>().map(ExitStatus::exit_code)))+
        })
    };
}

/// The exit status of a failed command: the first error in its chain that names one, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let interrupted = err.chain().any(|e| {
        matches!(
            e.downcast_ref::<repro::train::TrainError>(),
            Some(repro::train::TrainError::Interrupted { .. })
        )
    });
    if interrupted {
        // 130 or 143: which signal stopped the run.
        return signals::exit_code();
    }
    first_status!(
        err,
        Interrupted,
        TaskInterrupted,
        FolderBusy,
        Mismatch,
        Unusable,
        repro::config::ConfigError,
        repro::render::RenderError,
        repro::verify::VerifyError,
        repro::backend::DeviceError,
        repro::train::TrainError,
        repro::store::StoreError,
        repro::exec::slurm::SlurmError,
    )
    .unwrap_or(repro::exit::FAILURE)
}
