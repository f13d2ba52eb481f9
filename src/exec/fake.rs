//! A trainer that trains nothing: deterministic metrics from the run id, optional sleeps,
//! failures and divergence, checkpoints it resumes from. Selected by a run config's `fake:`
//! section, for tests and the crash checks.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::trainer::{RunContext, RunSpec, TrainError, Trainer};
use crate::config::run::FakeConfig;
use crate::result::{Artifact, ClassResult, EpochMetrics, LearnedParam, RunResult, CHECKPOINT};

pub struct FakeTrainer;

/// Log of every start, one line per attempt: lets tests prove no run ran twice at once.
pub const STARTS_LOG: &str = "fake-starts.log";
const CHECKPOINT_FILE: &str = "fake-checkpoint.txt";

/// A number in [0, 1) that depends only on the run id.
fn unit(id: &str, salt: u64) -> f64 {
    let seed = u64::from_str_radix(&id[..id.len().min(15)], 16).unwrap_or(0)
        ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mixed = seed.wrapping_mul(0x2545_F491_4F6C_DD1D).rotate_left(29);
    (mixed >> 11) as f64 / (1u64 << 53) as f64
}

fn last_epoch(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join(CHECKPOINT_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Write-then-rename, so a kill leaves the old checkpoint or the new one, never half of one.
fn save_checkpoint(dir: &Path, epoch: u32) -> std::io::Result<()> {
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    std::fs::write(&tmp, epoch.to_string())?;
    std::fs::rename(tmp, dir.join(CHECKPOINT_FILE))
}

fn log_start(dir: &Path, attempt: u32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(STARTS_LOG))?;
    writeln!(log, "{} attempt {attempt}", std::process::id())
}

impl Trainer for FakeTrainer {
    fn run(&self, run: &RunSpec, ctx: &RunContext) -> Result<RunResult, TrainError> {
        let fake = run.config.fake.clone().unwrap_or_default();
        let io = |source| TrainError::Io {
            path: ctx.out_dir.clone(),
            source,
        };
        log_start(&ctx.out_dir, ctx.attempt).map_err(io)?;
        if let Some(missing) = ctx.parents.iter().find(|p| p.checkpoint.is_none()) {
            return Err(TrainError::Failed(format!(
                "parent {} has no checkpoint",
                missing.id
            )));
        }
        let resumed_from = last_epoch(&ctx.out_dir);
        for epoch in resumed_from + 1..=fake.epochs {
            ctx.check_cancel(epoch as usize - 1)?;
            std::thread::sleep(Duration::from_millis(fake.sleep_ms));
            let metrics = EpochMetrics {
                epoch: epoch as usize,
                loss: 1.0 / f64::from(epoch) + unit(&run.id, 1) * 0.1,
                lr: None,
                images_per_s: None,
                eval_seconds: None,
                test_top1: None,
                ..EpochMetrics::default()
            };
            ctx.observer.epoch(&metrics, fake.epochs as usize);
            save_checkpoint(&ctx.out_dir, epoch).map_err(io)?;
        }
        finish(run, ctx, &fake, resumed_from)
    }
}

fn finish(
    run: &RunSpec,
    ctx: &RunContext,
    fake: &FakeConfig,
    resumed_from: u32,
) -> Result<RunResult, TrainError> {
    let failing = fake.fail_attempts.is_none_or(|n| ctx.attempt <= n);
    if let (Some(msg), true) = (&fake.fail, failing) {
        return Err(TrainError::Failed(msg.clone()));
    }
    let top1 = 40.0 + 20.0 * unit(&run.id, 2);
    let mut result = RunResult {
        diverged: fake.diverge.clone(),
        ..RunResult::default()
    }
    .with_metric("test", "top1", top1)
    .with_metric("test", "top5", (top1 + 25.0).min(100.0))
    .with_metric("fake", "resumed_from_epoch", f64::from(resumed_from));
    result.classes = (0..3)
        .map(|class| ClassResult {
            class,
            n_train: 100 >> class,
            n_test: 10,
            correct: (10.0 * unit(&run.id, 10 + u64::from(class))) as u64,
        })
        .collect();
    result.learned = vec![LearnedParam {
        module: "layer1.act".into(),
        name: "kappa".into(),
        value: unit(&run.id, 3),
    }];
    result.artifacts = vec![Artifact::new(CHECKPOINT, ctx.out_dir.join(CHECKPOINT_FILE))];
    Ok(result)
}
