//! One run: a resolved [`RunConfig`] in, a [`RunResult`] out. Knows nothing of manifests or
//! the results store; the executor calls it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ElementConversion;
use burn::tensor::{Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::checkpoint::{self, CheckpointError};
use super::evaluate::{evaluate_model, Analyses};
use super::loss::{Loss, Targets};
use super::schedule::LrSchedule;
use super::sgd::Sgd;
use super::stage::load_parent;
use crate::config::eval::ReportEpoch;
use crate::config::run::InvalidRun;
use crate::config::train::FromParent;
use crate::config::RunConfig;
use crate::data::{load_dataset, Batch, DataError, Loader};
use crate::eval::report::EvalReport;
use crate::nn::{FusedBackend, LearnedParam, Model};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid run config: {0}")]
    Config(#[from] InvalidRun),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot create the run folder {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("interrupted after {epochs_done} epochs (resumable from the last checkpoint)")]
    Interrupted { epochs_done: usize },
}

/// Called with each finished epoch's metrics (the executor records them as they come).
pub type EpochCallback<'a> = &'a (dyn Fn(&EpochMetrics) + Sync);

/// Where a run keeps its files, and how it reports progress.
#[derive(Clone, Default)]
pub struct TrainContext<'a> {
    /// Folder for checkpoints; `None` trains without checkpoints.
    pub out_dir: Option<PathBuf>,
    /// Continue from `out_dir`'s checkpoint when there is one.
    pub resume: bool,
    /// Draw a progress bar (only on a terminal).
    pub progress: bool,
    /// Set from another thread (Ctrl-C) to stop after the current batch.
    pub cancel: Option<Arc<AtomicBool>>,
    pub on_epoch: Option<EpochCallback<'a>>,
    /// The parent stage's checkpoint, for `train.from_parent`.
    pub parent_checkpoint: Option<PathBuf>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunStatus {
    Done,
    /// The loss became NaN or infinite; the run stopped there.
    Diverged {
        epoch: usize,
        reason: String,
    },
}

/// Training-side numbers of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub loss: f64,
    pub lr: f64,
    pub images_per_s: f64,
    /// Test top-1 when the epoch was evaluated (`eval.eval_every`).
    pub test_top1: Option<f64>,
}

/// Everything a paper table or figure needs from one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    #[serde(flatten)]
    pub status: RunStatus,
    /// The epoch whose model the test numbers come from (1-based count of finished epochs).
    pub reported_epoch: usize,
    pub test: Option<EvalReport>,
    /// The analyses `eval.analyses` asked for, on the final model.
    #[serde(default)]
    pub analyses: Analyses,
    pub epochs: Vec<EpochMetrics>,
    pub learned: Vec<LearnedParamValue>,
    pub wall_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedParamValue {
    pub module: String,
    pub name: String,
    pub index: usize,
    pub value: f32,
}

impl From<LearnedParam> for LearnedParamValue {
    fn from(p: LearnedParam) -> Self {
        Self {
            module: p.module,
            name: p.name.to_string(),
            index: p.index,
            value: p.value,
        }
    }
}

/// Trains and evaluates one run on backend `B` (with autodiff).
pub fn train<B>(run: &RunConfig, ctx: &TrainContext<'_>, device: &B::Device) -> Result<RunResult, TrainError>
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    run.validate()?;
    let start = Instant::now();
    let dataset = Arc::new(load_dataset(&run.data)?);
    let loader = Loader::new(
        dataset.clone(),
        &run.data,
        run.train.batch_size,
        run.train.epochs,
        run.seed,
    )?;
    let mut model = Model::<B>::seeded(&run.model, run.seed, device);
    if run.train.from_parent != FromParent::None {
        let parent = ctx.parent_checkpoint.as_deref().ok_or_else(|| InvalidRun {
            key: "train.from_parent".into(),
            reason: "this stage needs a parent stage's checkpoint (declare it with `needs:`)".into(),
        })?;
        model = load_parent(model, run, parent, device).map_err(CheckpointError::from)?;
    }
    let mut sgd = Sgd::<B::InnerBackend>::new(&run.train);
    let mut first_epoch = 0;
    if let Some(dir) = &ctx.out_dir {
        std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = checkpoint::latest(dir);
        if ctx.resume && path.is_file() {
            let (restored, done) = checkpoint::load(&path, model, &mut sgd, run, device)?;
            model = restored;
            first_epoch = done;
        }
    }

    let crt = run.train.from_parent == FromParent::Crt;
    let schedule = LrSchedule::new(run.train.lr, run.train.epochs, run.train.schedule.clone());
    let loss = Loss::new(&run.train.loss, &dataset.class_counts);
    let steps = loader.steps_per_epoch();
    let bar = progress_bar(
        ctx.progress,
        (run.train.epochs * steps) as u64,
        (first_epoch * steps) as u64,
    );
    let mut epochs = Vec::new();
    let mut best: Option<(f64, usize, EvalReport)> = None;

    for epoch in first_epoch..run.train.epochs {
        // Reseeding per epoch keeps dropout identical whether or not the run was resumed.
        crate::nn::rng::seed(run.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let epoch_start = Instant::now();
        let (mut sum, mut seen) = (0.0, 0usize);
        for (iter, batch) in loader.train_epoch(epoch).enumerate() {
            if ctx.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(TrainError::Interrupted { epochs_done: epoch });
            }
            let batch = batch?;
            let lr = schedule.lr(epoch, iter, steps);
            let n = batch.labels.len();
            let (x, targets) = to_tensors::<B>(batch, device);
            let value = loss.forward(logits(&model, x, crt), targets, epoch);
            let scalar = value.clone().into_scalar().elem::<f64>();
            if !scalar.is_finite() {
                bar.finish_and_clear();
                let reason = format!("loss became {scalar} at epoch {} batch {iter}", epoch + 1);
                return Ok(diverged(epoch, reason, epochs, start));
            }
            let grads = GradientsParams::from_grads(value.backward(), &model);
            model = sgd.step(lr, model, grads);
            sum += scalar * n as f64;
            seen += n;
            bar.inc(1);
            bar.set_message(format!(
                "epoch {}/{} loss {:.4} lr {lr:.4}",
                epoch + 1,
                run.train.epochs,
                sum / seen as f64
            ));
        }
        let done = epoch + 1;
        let evaluate_now = run.eval.eval_every > 0 && done % run.eval.eval_every == 0;
        let test_top1 = if evaluate_now {
            let (report, _) = evaluate_model(&model.valid(), &loader, &dataset, run)?;
            let top1 = report.top1;
            if best.as_ref().is_none_or(|(b, _, _)| top1 > *b) {
                best = Some((top1, done, report));
            }
            Some(top1)
        } else {
            None
        };
        let metrics = EpochMetrics {
            epoch: done,
            loss: sum / seen.max(1) as f64,
            lr: schedule.lr(epoch, 0, steps),
            images_per_s: seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9),
            test_top1,
        };
        if let Some(dir) = &ctx.out_dir {
            let every = run.train.checkpoint_every;
            if done == run.train.epochs || (every > 0 && done % every == 0) {
                checkpoint::save(&checkpoint::latest(dir), &model, &sgd, run, done)?;
            }
        }
        if let Some(callback) = &ctx.on_epoch {
            callback(&metrics);
        }
        epochs.push(metrics);
    }
    bar.finish_and_clear();

    let (final_report, analyses) = evaluate_model(&model.valid(), &loader, &dataset, run)?;
    let (reported_epoch, test) = match (run.eval.report, best) {
        (ReportEpoch::Best, Some((_, epoch, report))) => (epoch, report),
        _ => (run.train.epochs, final_report),
    };
    Ok(RunResult {
        status: RunStatus::Done,
        reported_epoch,
        test: Some(test),
        analyses,
        epochs,
        learned: model.learned_params().into_iter().map(Into::into).collect(),
        wall_s: start.elapsed().as_secs_f64(),
    })
}

/// Training-mode logits. Under cRT the backbone runs in eval mode outside autodiff (frozen
/// weights and BatchNorm statistics, no backward through it) and only the head is tracked.
fn logits<B>(model: &Model<B>, x: Tensor<B, 4>, crt: bool) -> Tensor<B, 2>
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    if crt {
        let features = model.valid().features(x.inner());
        model.head().forward(Tensor::from_inner(features))
    } else {
        model.forward(x)
    }
}

fn diverged(epoch: usize, reason: String, epochs: Vec<EpochMetrics>, start: Instant) -> RunResult {
    RunResult {
        status: RunStatus::Diverged {
            epoch: epoch + 1,
            reason,
        },
        reported_epoch: epoch,
        test: None,
        analyses: Analyses::default(),
        epochs,
        learned: Vec::new(),
        wall_s: start.elapsed().as_secs_f64(),
    }
}

fn to_tensors<B: Backend>(batch: Batch, device: &B::Device) -> (Tensor<B, 4>, Targets<B>) {
    let n = batch.labels.len();
    let x = Tensor::from_data(TensorData::new(batch.images, batch.shape), device);
    let targets = match batch.soft_targets {
        Some(soft) => {
            let classes = soft.len() / n.max(1);
            Targets::Soft(Tensor::from_data(TensorData::new(soft, [n, classes]), device))
        }
        None => {
            let labels: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
            Targets::Hard(Tensor::<B, 1, Int>::from_data(
                TensorData::new(labels, [n]),
                device,
            ))
        }
    };
    (x, targets)
}

fn progress_bar(enabled: bool, total: u64, position: u64) -> ProgressBar {
    let target = if enabled {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    bar.set_position(position);
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} {msg}") {
        bar.set_style(style);
    }
    bar
}
