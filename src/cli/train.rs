//! `repro train`: one run from a run-config file, outside any manifest.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Args;

use crate::backend::DeviceSpec;
use crate::config::layers::{deep_merge, resolve_merged};
use crate::config::{ConfigError, Overrides, RunConfig};
use crate::train::{self, RunStatus, TrainContext};

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
    let run = resolve(&args)?;
    let spec: DeviceSpec = args
        .device
        .parse()
        .map_err(|e| ConfigError::Usage(format!("--device: {e}")))?;
    let spec = spec
        .check_available()
        .map_err(|e| ConfigError::Usage(e.to_string()))?;
    run.validate()
        .map_err(|e| ConfigError::in_file(&args.config, None, e.to_string()))?;

    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    // Ctrl-C stops after the current batch; the last checkpoint stays for a resume.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let ctx = TrainContext {
        out_dir: args.out.clone(),
        resume: true,
        progress: std::io::stderr().is_terminal(),
        cancel: Some(cancel),
        on_epoch: None,
        parent_checkpoint: args.parent.clone(),
    };
    let result = match spec {
        DeviceSpec::Cpu => train::train::<crate::backend::CpuTrain>(&run, &ctx, &Default::default())?,
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(index) => {
            let device = burn::backend::cuda::CudaDevice::new(index);
            train::train::<crate::backend::GpuTrain>(&run, &ctx, &device)?
        }
        #[cfg(not(feature = "cuda"))]
        DeviceSpec::Cuda(_) => unreachable!("check_available rejects CUDA without the feature"),
    };
    if let Some(out) = &args.out {
        std::fs::write(out.join("result.json"), serde_json::to_vec_pretty(&result)?)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_table(&result);
    }
    match result.status {
        RunStatus::Done => Ok(()),
        RunStatus::Diverged { reason, .. } => anyhow::bail!("diverged: {reason}"),
    }
}

/// File (with its line numbers in errors) < `REPRO_*` environment < `--set`.
fn resolve(args: &TrainArgs) -> anyhow::Result<RunConfig> {
    let text = std::fs::read_to_string(&args.config).map_err(|source| ConfigError::Io {
        path: args.config.clone(),
        source,
    })?;
    let from_file: RunConfig = serde_yaml::from_str(&text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        ConfigError::in_file(&args.config, line, e.to_string())
    })?;
    let mut merged = serde_json::to_value(&from_file)?;
    let overrides = Overrides::from_env_and_sets(&args.set)?;
    for layer in &overrides.layers {
        deep_merge(&mut merged, &layer.value);
    }
    resolve_merged(&merged).map_err(|e| ConfigError::Usage(format!("{}{}", e, overrides.hint())).into())
}

fn print_table(result: &train::RunResult) {
    let Some(test) = &result.test else { return };
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    println!("epochs  top1    top5    many    medium  few     nll     ece     wall");
    println!(
        "{:<7} {:<7} {:<7} {:<7} {:<7} {:<7} {:<7.4} {:<7.4} {:.1}s",
        result.reported_epoch,
        pct(Some(test.top1)),
        pct(Some(test.top5)),
        pct(test.many),
        pct(test.medium),
        pct(test.few),
        test.nll,
        test.ece,
        result.wall_s
    );
}
