//! `repro train`: one run from a run-config file, outside any manifest.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::progress::{Mode, TrainProgress};
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
    /// Print each finished epoch and then the result as JSON lines (`"event": "epoch"`, then
    /// `"event": "result"`) instead of progress and a table.
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

    let _lock = args.out.as_deref().map(FolderLock::take).transpose()?;
    // A signal stops after the current batch; the last checkpoint stays for a resume.
    let cancel = super::signals::cancellation();
    let progress = TrainProgress::new(Mode::detect(args.json));
    let ctx = TrainContext {
        out_dir: args.out.clone(),
        resume: true,
        cancel: Some(cancel),
        observer: Some(&progress),
        parent_checkpoint: args.parent.clone(),
    };
    let start = std::time::Instant::now();
    let result = fit_on(spec, &run, &ctx);
    progress.finish();
    let result = result?;
    let wall_s = start.elapsed().as_secs_f64();
    if let Some(out) = &args.out {
        std::fs::write(out.join("result.json"), serde_json::to_vec_pretty(&result)?)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "event": "result", "wall_s": wall_s, "result": result })
        );
    } else {
        print_table(&result, wall_s);
    }
    match result.diverged {
        None => Ok(()),
        Some(reason) => anyhow::bail!("diverged: {reason}"),
    }
}

/// Two `repro train --out DIR` on one folder would both train and overwrite each other's
/// checkpoints; the second is refused. The OS drops the lock when the process ends, however
/// it ends, so a killed run never leaves the folder locked.
struct FolderLock {
    _held: std::fs::File,
}

/// `--out` is held by another process.
#[derive(Debug, thiserror::Error)]
#[error("{} is in use by another `repro train`{holder}; wait for it to end, or pass another --out", path.display())]
pub struct FolderBusy {
    path: PathBuf,
    holder: String,
}

impl repro::exit::ExitStatus for FolderBusy {
    fn exit_code(&self) -> i32 {
        repro::exit::INPUT
    }
}

impl FolderLock {
    fn take(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(".lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                write!(file, "{}", std::process::id())?;
                Ok(FolderLock { _held: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = match pid.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                Err(FolderBusy {
                    path: dir.to_path_buf(),
                    holder,
                }
                .into())
            }
            Err(std::fs::TryLockError::Error(e)) => {
                Err(anyhow::Error::new(e).context(format!("locking {}", path.display())))
            }
        }
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
