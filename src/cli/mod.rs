//! `repro` subcommands of the orchestration half. Each takes its parsed arguments and returns
//! anyhow::Result; `exit_code` maps errors to the process status (2: usage or input).

mod common;
mod execute;
mod inspect;
mod render;
mod rm;
mod train;
mod verify;

use clap::{Parser, Subcommand};

pub use common::{DbArg, ManifestArgs, ManifestOpts};
pub use execute::{cmd_run, Interrupted, RunArgs};
pub use inspect::{
    cmd_config, cmd_list, cmd_plan, cmd_show, cmd_status, plan_report, ConfigArgs, ListArgs, PlanArgs,
    PlanReport, ShowArgs, StatusArgs,
};
pub use render::{cmd_render, render_after_run, RenderArgs, FIGURES_DIR, TABLES_DIR};
pub use rm::{cmd_rm, RmArgs};
pub use train::{cmd_train, TrainArgs};
pub use verify::{cmd_verify, Mismatch, VerifyArgs};

use crate::config::load::ManifestKind;
use crate::config::ConfigError;
use crate::store::StoreError;

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
    /// Train one run from a run-config file and print its result
    Train(TrainArgs),
    /// Check our models against reference PyTorch fixtures (model, weights, input, logits).
    ///
    /// Prints the largest absolute logit difference per check; exits 1 when one is over the
    /// fixture's tolerance, 2 when a fixture or its weights are unusable.
    Verify(VerifyArgs),
}

/// Library versions recorded in every run's provenance (Cargo.lock pins the patch release).
const VERSIONS: [(&str, &str); 1] = [("burn", "0.21")];

/// Runs a command; `real` is the trainer for runs without a `fake:` section.
pub fn dispatch(cli: Cli, real: &dyn crate::exec::Trainer) -> anyhow::Result<()> {
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
        Command::Train(a) => cmd_train(a),
        Command::Verify(a) => cmd_verify(a),
    }
}

/// 2 for bad input (manifests, overrides, names), 130 after Ctrl-C, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.downcast_ref::<Interrupted>().is_some() {
        return 130;
    }
    let input_error = err.downcast_ref::<ConfigError>().is_some()
        || matches!(
            err.downcast_ref::<crate::render::RenderError>(),
            Some(
                crate::render::RenderError::NoTable(_)
                    | crate::render::RenderError::Template { .. }
                    | crate::render::RenderError::TemplateDir(_)
            )
        )
        || err.downcast_ref::<crate::verify::VerifyError>().is_some()
        || err.downcast_ref::<crate::backend::DeviceError>().is_some()
        || matches!(
            err.downcast_ref::<crate::train::TrainError>(),
            Some(
                crate::train::TrainError::Config(_)
                    | crate::train::TrainError::Data(_)
                    | crate::train::TrainError::Checkpoint(_)
            )
        );
    if input_error {
        return 2;
    }
    match err.downcast_ref::<StoreError>() {
        Some(StoreError::NotFound(_) | StoreError::Ambiguous(..)) => 2,
        _ => 1,
    }
}
