//! `repro train`: one run from a run-config file, outside any manifest.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use repro::backend::DeviceSpec;
use repro::config::{ConfigError, RunConfig};
use repro::result::RunResult;
use repro::train::{fit_on, TrainContext};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Run config (YAML) with sections model, data, train, eval, seed; omitted keys take the
    /// built-in defaults.
    pub config: PathBuf,
    /// Override a key, e.g. --set train.epochs=2 (repeatable; also REPRO_TRAIN__EPOCHS=2).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
    /// cpu or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Folder for checkpoints and result.json; with it, a rerun resumes from the checkpoint.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Checkpoint of a parent run, for configs with `train.from_parent` (crt, finetune).
    #[arg(long)]
    pub parent: Option<PathBuf>,
}

pub fn cmd_train(args: TrainArgs) -> anyhow::Result<()> {
    let run = RunConfig::load(&args.config, &args.set)?;
    let spec: DeviceSpec = args
        .device
        .parse()
        .map_err(|e| ConfigError::Usage(format!("--device: {e}")))?;

    // A signal stops after the current batch; the last checkpoint stays for a resume.
    let cancel = super::signals::cancellation();
    let ctx = TrainContext {
        out_dir: args.out.clone(),
        resume: true,
        progress: std::io::stderr().is_terminal(),
        cancel: Some(cancel),
        on_epoch: None,
        parent_checkpoint: args.parent.clone(),
    };
    let start = std::time::Instant::now();
    let result = fit_on(spec, &run, &ctx)?;
    let wall_s = start.elapsed().as_secs_f64();
    if let Some(out) = &args.out {
        std::fs::write(out.join("result.json"), serde_json::to_vec_pretty(&result)?)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_table(&result, wall_s);
    }
    match result.diverged {
        None => Ok(()),
        Some(reason) => anyhow::bail!("diverged: {reason}"),
    }
}

fn print_table(result: &RunResult, wall_s: f64) {
    let Some(epoch) = result.reported_epoch else {
        return;
    };
    let metric = |name: &str, decimals: usize| {
        result
            .metric("test", name)
            .map_or("-".to_string(), |v| format!("{v:.decimals$}"))
    };
    println!("epochs  top1    top5    many    medium  few     nll     ece     wall");
    println!(
        "{:<7} {:<7} {:<7} {:<7} {:<7} {:<7} {:<7} {:<7} {wall_s:.1}s",
        epoch,
        metric("top1", 2),
        metric("top5", 2),
        metric("many", 2),
        metric("medium", 2),
        metric("few", 2),
        metric("nll", 4),
        metric("ece", 4),
    );
}
