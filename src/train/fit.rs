//! One run: a resolved [`RunConfig`] in, a [`RunResult`] out. Knows nothing of manifests or
//! the results store; the executor calls it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::module::{AutodiffModule, Module};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ElementConversion;
use burn::tensor::{Int, Tensor, TensorData};

use super::checkpoint::{self, CheckpointError};
use super::ema::Ema;
use super::evaluate::evaluate_model;
use super::loss::{Loss, Targets};
use super::optim::Optimizer;
use super::schedule::LrSchedule;
use super::stage::load_parent;
use crate::backend::{DeviceError, DeviceSpec};
use crate::config::eval::ReportEpoch;
use crate::config::run::InvalidRun;
use crate::config::train::FromParent;
use crate::config::RunConfig;
use crate::data::{load_dataset, Batch, DataError, Dataset, Loader};
use crate::eval::report::EvalReport;
use crate::nn::import::{load_state_dict, StateDict};
use crate::nn::layers::Adaptive;
use crate::nn::{Declare, FusedBackend, Model, Task};
use crate::result::{Analyses, EpochMetrics, LearnedParam, RunResult};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid run config: {0}")]
    Config(#[from] InvalidRun),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot write in the run folder {path}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The cancellation flag was seen; the run resumes from its last checkpoint later.
    #[error("interrupted after {epochs_done} epochs (resumable from the last checkpoint)")]
    Interrupted { epochs_done: usize },
    /// The run cannot start as configured (a parent without a checkpoint, an unusable device).
    #[error("{0}")]
    Failed(String),
    #[error("recording metrics: {0}")]
    Sink(String),
    #[error(transparent)]
    Device(#[from] DeviceError),
}

impl crate::exit::ExitStatus for TrainError {
    fn exit_code(&self) -> i32 {
        match self {
            TrainError::Config(_)
            | TrainError::Data(_)
            | TrainError::Checkpoint(_)
            | TrainError::Device(_) => crate::exit::INPUT,
            TrainError::Interrupted { .. } => crate::exit::INTERRUPTED,
            TrainError::Io { .. } | TrainError::Failed(_) | TrainError::Sink(_) => crate::exit::FAILURE,
        }
    }
}

/// Where a run is: batch `batch` of `batches` finished in epoch `epoch` (0-based) of `epochs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Position {
    pub epoch: usize,
    pub epochs: usize,
    pub batch: usize,
    pub batches: usize,
}

/// Told how a run is getting on. Training only reports; drawing progress and recording epochs
/// are the caller's business (a terminal bar, log lines, JSON events, the store).
pub trait Observer: Sync {
    fn batch(&self, _at: Position) {}
    /// A finished epoch, of `epochs`.
    fn epoch(&self, _metrics: &EpochMetrics, _epochs: usize) {}
}

/// Where a run keeps its files, and how it reports progress.
#[derive(Clone, Default)]
pub struct TrainContext<'a> {
    /// Folder for checkpoints; `None` trains without checkpoints.
    pub out_dir: Option<PathBuf>,
    /// Continue from `out_dir`'s checkpoint when there is one.
    pub resume: bool,
    /// Set from another thread (Ctrl-C) to stop after the current batch.
    pub cancel: Option<Arc<AtomicBool>>,
    pub observer: Option<&'a dyn Observer>,
    /// The parent stage's checkpoint, for `train.from_parent`.
    pub parent_checkpoint: Option<PathBuf>,
}

/// Trains and evaluates one run on `device`: the one place a training command picks its backend.
pub fn fit_on(device: DeviceSpec, run: &RunConfig, ctx: &TrainContext<'_>) -> Result<RunResult, TrainError> {
    crate::with_backend!(device.check_available()?, |B, device| {
        fit::<burn::backend::Autodiff<B>>(run, ctx, &device)
    })
}

/// Trains and evaluates one run on backend `B` (with autodiff): an image classifier, or a
/// language model ([`super::lm`]).
pub fn fit<B>(run: &RunConfig, ctx: &TrainContext<'_>, device: &B::Device) -> Result<RunResult, TrainError>
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    match run.model.task() {
        Task::ImageClassification => fit_classifier::<B>(run, ctx, device),
        Task::LanguageModelling => super::lm::fit_language::<B>(run, ctx, device),
    }
}

fn fit_classifier<B>(
    run: &RunConfig,
    ctx: &TrainContext<'_>,
    device: &B::Device,
) -> Result<RunResult, TrainError>
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    let (mut session, mut model) = Session::<B>::start(run, ctx, device)?;
    let mut epochs = Vec::new();
    let mut best: Option<(f64, usize, EvalReport)> = None;
    // The last epoch's evaluation, when there is one, is the final evaluation: not run twice.
    let mut last_eval = None;
    for epoch in session.first_epoch..run.train.epochs {
        let (trained, outcome) = session.train_epoch(model, epoch)?;
        model = trained;
        let (loss, seen, seconds) = match outcome {
            Epoch::Trained {
                loss,
                images,
                seconds,
            } => (loss, images, seconds),
            Epoch::Diverged(reason) => {
                return Ok(RunResult {
                    diverged: Some(reason),
                    epochs,
                    ..RunResult::default()
                });
            }
        };
        let done = epoch + 1;
        let evaluate_now = run.eval.eval_every > 0 && done.is_multiple_of(run.eval.eval_every);
        let evaluation_start = Instant::now();
        let test_top1 = if evaluate_now {
            let (report, analyses) = session.evaluate(&model)?;
            let top1 = report.top1;
            if best.as_ref().is_none_or(|(b, _, _)| top1 > *b) {
                best = Some((top1, done, report.clone()));
            }
            if done == run.train.epochs {
                last_eval = Some((report, analyses));
            }
            Some(top1)
        } else {
            None
        };
        let metrics = EpochMetrics {
            epoch: done,
            loss,
            lr: Some(session.updates.lr(epoch, 0)),
            images_per_s: Some(seen as f64 / seconds.max(1e-9)),
            test_top1,
            eval_seconds: evaluate_now.then(|| evaluation_start.elapsed().as_secs_f64()),
            ..EpochMetrics::default()
        };
        session.checkpoint(&model, done)?;
        if let Some(observer) = ctx.observer {
            observer.epoch(&metrics, run.train.epochs);
        }
        epochs.push(metrics);
    }
    session.finish(&model, best, last_eval, epochs)
}

/// How an epoch of training ended.
enum Epoch {
    Trained {
        loss: f64,
        images: usize,
        seconds: f64,
    },
    /// The loss stopped being finite, for this reason.
    Diverged(String),
}

/// One run in progress: its data, optimiser and where it resumes (the model is passed along,
/// so that each optimiser step consumes the weights it replaces).
struct Session<'a, B: AutodiffBackend> {
    run: &'a RunConfig,
    ctx: &'a TrainContext<'a>,
    device: &'a B::Device,
    dataset: Arc<Dataset>,
    loader: Loader,
    updates: Updates<B>,
    loss: Loss,
    first_epoch: usize,
}

impl<'a, B> Session<'a, B>
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    /// Data, a seeded model (from the parent stage's checkpoint when the run has one), and the
    /// run's own last checkpoint when resuming.
    fn start(
        run: &'a RunConfig,
        ctx: &'a TrainContext<'a>,
        device: &'a B::Device,
    ) -> Result<(Self, Model<B>), TrainError> {
        run.validate()?;
        let dataset = Arc::new(load_dataset(&run.data)?);
        let loader = Loader::new(
            dataset.clone(),
            &run.data,
            run.train.batch_size,
            run.train.epochs,
            run.seed,
        )?;
        let mut model = Model::<B>::seeded(&run.model, run.seed, device).map_err(wrong_task)?;
        if run.train.from_parent != FromParent::None {
            let parent = ctx.parent_checkpoint.as_deref().ok_or_else(|| InvalidRun {
                key: "train.from_parent".into(),
                reason: "this stage needs a parent stage's checkpoint (declare it with `needs:`)".into(),
            })?;
            model = load_parent(model, run, parent, device).map_err(CheckpointError::from)?;
        }
        let mut updates = Updates::new(run, loader.steps_per_epoch());
        let (model, first_epoch) = resume(model, &mut updates, run, ctx, device)?;
        let session = Self {
            loss: Loss::new(&run.train.loss, &dataset.class_counts),
            updates,
            run,
            ctx,
            device,
            dataset,
            loader,
            first_epoch,
        };
        Ok((session, model))
    }

    /// One pass over the training set; hands back the updated model. With `train.accumulate`
    /// = k, the gradients of k batches (each loss divided by k) make one update; an epoch's
    /// last, shorter group still makes one.
    fn train_epoch(&mut self, mut model: Model<B>, epoch: usize) -> Result<(Model<B>, Epoch), TrainError> {
        // Reseeding per epoch keeps dropout identical whether or not the run was resumed.
        crate::nn::rng::seed(epoch_seed(self.run.seed, epoch));
        let start = Instant::now();
        let crt = self.run.train.from_parent == FromParent::Crt;
        let mut pending = GradientsAccumulator::<Model<B>>::new();
        let (mut sum, mut seen) = (0.0, 0usize);
        for (iter, batch) in self.loader.train_epoch(epoch).enumerate() {
            check_cancel(self.ctx, epoch)?;
            let batch = batch?;
            let n = batch.labels.len();
            let (x, targets) = to_tensors::<B>(batch, self.device);
            let value = self.loss.forward(logits(&model, x, crt), targets, epoch);
            let scalar = match self.updates.absorb(model, value, &mut pending, epoch, iter) {
                Absorbed::Updated(updated, scalar) => {
                    model = updated;
                    scalar
                }
                Absorbed::Diverged(unchanged, reason) => return Ok((unchanged, Epoch::Diverged(reason))),
            };
            sum += scalar * n as f64;
            seen += n;
            self.updates.report(self.ctx, self.run, epoch, iter);
        }
        let trained = Epoch::Trained {
            loss: sum / seen.max(1) as f64,
            images: seen,
            seconds: start.elapsed().as_secs_f64(),
        };
        Ok((model, trained))
    }

    fn evaluate(&self, model: &Model<B>) -> Result<(EvalReport, Analyses), DataError> {
        evaluate_model(&model.valid(), &self.loader, &self.dataset, self.run)
    }

    fn checkpoint(&self, model: &Model<B>, done: usize) -> Result<(), TrainError> {
        save_checkpoint::<B, _>(self.run, self.ctx, model, &self.updates, done)
    }

    /// The final evaluation (or the best one, `eval.report: best`), analyses and learned κ/λ;
    /// `last_eval` is the final model's evaluation when the last epoch already made it.
    fn finish(
        &self,
        model: &Model<B>,
        best: Option<(f64, usize, EvalReport)>,
        last_eval: Option<(EvalReport, Analyses)>,
        epochs: Vec<EpochMetrics>,
    ) -> Result<RunResult, TrainError> {
        let (final_report, analyses) = match last_eval {
            Some(evaluated) => evaluated,
            None => self.evaluate(model)?,
        };
        let (reported_epoch, test) = match (self.run.eval.report, best) {
            (ReportEpoch::Best, Some((_, epoch, report))) => (epoch, report),
            _ => (self.run.train.epochs, final_report),
        };
        let mut result = RunResult {
            reported_epoch: Some(reported_epoch),
            epochs,
            learned: learned_params(model.adaptive_modules()),
            ..RunResult::default()
        };
        test.record(&mut result);
        if let Some(nc1) = analyses.nc1 {
            result.set_metric("test", "nc1", nc1);
        }
        result.analyses = analyses;
        if let Some(average) = self.updates.ema.as_ref().and_then(Ema::weights) {
            self.evaluate_average(model, average)?
                .record_scores("ema", &mut result);
        }
        Ok(result)
    }

    /// The final evaluation of the weight average: the model with its averaged tensors.
    fn evaluate_average(&self, model: &Model<B>, average: &StateDict) -> Result<EvalReport, TrainError> {
        let origin = std::path::Path::new("the weight average (train.ema)");
        let averaged = load_state_dict(model.valid(), average.clone(), origin, self.device)
            .map_err(CheckpointError::from)?;
        let (report, _) = evaluate_model(&averaged, &self.loader, &self.dataset, self.run)?;
        Ok(report)
    }
}

/// Every learned κ and λ of `modules`, named by layer; per-channel values get their channel in
/// the name.
pub(super) fn learned_params<B: FusedBackend>(modules: Vec<(String, &Adaptive<B>)>) -> Vec<LearnedParam> {
    modules
        .into_iter()
        .flat_map(|(module, adaptive)| {
            let (kappa, lambda) = adaptive.learned();
            [("kappa", kappa), ("lambda", lambda)]
                .into_iter()
                .flat_map(move |(name, values)| {
                    let per_channel = values.len() > 1;
                    let module = module.clone();
                    values
                        .into_iter()
                        .enumerate()
                        .map(move |(c, value)| LearnedParam {
                            module: module.clone(),
                            name: if per_channel {
                                format!("{name}.{c}")
                            } else {
                                name.to_string()
                            },
                            value: f64::from(value),
                        })
                })
        })
        .collect()
}

/// What became of a batch's loss.
pub(super) enum Absorbed<M> {
    /// Its gradients are taken (and the model updated when its group of `train.accumulate`
    /// batches is complete); the loss's value.
    Updated(M, f64),
    /// The loss was not finite, for this reason; nothing was updated.
    Diverged(M, String),
}

/// The optimiser, its learning-rate schedule and gradient accumulation: turns each batch's
/// loss into updates. Shared by every trainer.
pub(super) struct Updates<B: AutodiffBackend> {
    pub optimizer: Optimizer<B::InnerBackend>,
    /// The moving average of the weights, when `train.ema` asks for one.
    pub ema: Option<Ema>,
    schedule: LrSchedule,
    accumulate: usize,
    /// Batches per epoch.
    steps: usize,
}

impl<B: AutodiffBackend> Updates<B> {
    pub fn new(run: &RunConfig, steps: usize) -> Self {
        Self {
            optimizer: Optimizer::new(&run.train),
            ema: Ema::new(run),
            schedule: LrSchedule::new(run.train.lr, run.train.epochs, run.train.schedule.clone())
                .with_accumulation(run.train.accumulate),
            accumulate: run.train.accumulate,
            steps,
        }
    }

    /// The rate at batch `iter` of `epoch`.
    pub fn lr(&self, epoch: usize, iter: usize) -> f64 {
        self.schedule.lr(epoch, iter, self.steps)
    }

    /// Backpropagates the loss of batch `iter` of `epoch`. With `train.accumulate` = k, the
    /// gradients of k batches (each loss divided by k) make one update; an epoch's last,
    /// shorter group still makes one.
    pub fn absorb<M>(
        &mut self,
        model: M,
        loss: Tensor<B, 1>,
        pending: &mut GradientsAccumulator<M>,
        epoch: usize,
        iter: usize,
    ) -> Absorbed<M>
    where
        M: AutodiffModule<B> + Declare,
    {
        let scalar = loss.clone().into_scalar().elem::<f64>();
        if !scalar.is_finite() {
            return Absorbed::Diverged(
                model,
                format!("loss became {scalar} at epoch {} batch {iter}", epoch + 1),
            );
        }
        let k = self.accumulate;
        let loss = if k > 1 { loss / k as f64 } else { loss };
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        if k == 1 {
            let model = self.optimizer.step(self.lr(epoch, iter), model, grads);
            return Absorbed::Updated(self.averaged(model, epoch, iter), scalar);
        }
        pending.accumulate(&model, grads);
        if (iter + 1).is_multiple_of(k) || iter + 1 == self.steps {
            // The rate of the group's first batch: the fraction of the epoch it starts at.
            let lr = self.lr(epoch, iter - iter % k);
            let model = self.optimizer.step(lr, model, pending.grads());
            return Absorbed::Updated(self.averaged(model, epoch, iter / k), scalar);
        }
        Absorbed::Updated(model, scalar)
    }

    /// Hands `model` back once the weight average, if any, has seen update `update` of `epoch`.
    fn averaged<M: Module<B> + Declare>(&mut self, model: M, epoch: usize, update: usize) -> M {
        if let Some(ema) = &mut self.ema {
            ema.after_update(&model, epoch, update);
        }
        model
    }

    /// Tells the observer batch `iter` of `epoch` is done.
    pub fn report(&self, ctx: &TrainContext<'_>, run: &RunConfig, epoch: usize, iter: usize) {
        if let Some(observer) = ctx.observer {
            observer.batch(Position {
                epoch,
                epochs: run.train.epochs,
                batch: iter + 1,
                batches: self.steps,
            });
        }
    }
}

/// Makes the run folder and, when resuming, restores the model and optimiser from its
/// checkpoint; returns the model and the epochs already done.
pub(super) fn resume<B, M>(
    model: M,
    updates: &mut Updates<B>,
    run: &RunConfig,
    ctx: &TrainContext<'_>,
    device: &B::Device,
) -> Result<(M, usize), TrainError>
where
    B: AutodiffBackend,
    M: Module<B> + Declare,
{
    let Some(dir) = &ctx.out_dir else {
        return Ok((model, 0));
    };
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
        path: dir.clone(),
        source,
    })?;
    let path = checkpoint::latest(dir);
    if ctx.resume && path.is_file() {
        return Ok(checkpoint::load(
            &path,
            model,
            &mut updates.optimizer,
            updates.ema.as_mut(),
            run,
            device,
        )?);
    }
    Ok((model, 0))
}

/// Saves a checkpoint after epoch `done` when `train.checkpoint_every` (or the end) says so.
pub(super) fn save_checkpoint<B, M>(
    run: &RunConfig,
    ctx: &TrainContext<'_>,
    model: &M,
    updates: &Updates<B>,
    done: usize,
) -> Result<(), TrainError>
where
    B: AutodiffBackend,
    M: Module<B> + Declare,
{
    let Some(dir) = &ctx.out_dir else {
        return Ok(());
    };
    let every = run.train.checkpoint_every;
    if done == run.train.epochs || (every > 0 && done.is_multiple_of(every)) {
        let path = checkpoint::latest(dir);
        checkpoint::save::<B, _>(&path, model, &updates.optimizer, updates.ema.as_ref(), run, done)?;
    }
    Ok(())
}

/// Stops the run when Ctrl-C (or a scheduler's signal) asked it to.
pub(super) fn check_cancel(ctx: &TrainContext<'_>, epoch: usize) -> Result<(), TrainError> {
    match &ctx.cancel {
        Some(cancel) if cancel.load(Ordering::Relaxed) => Err(TrainError::Interrupted { epochs_done: epoch }),
        _ => Ok(()),
    }
}

/// A network asked of an arch of another task: a config error.
pub(super) fn wrong_task(e: crate::nn::WrongTask) -> TrainError {
    TrainError::Config(InvalidRun {
        key: "model.arch".into(),
        reason: e.to_string(),
    })
}

/// The generator seed of one epoch (dropout masks): distinct for every (seed, epoch) pair of any
/// realistic run, since the prime multiplier exceeds every epoch count.
pub(super) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    const EPOCHS_APART: u64 = 1_000_003;
    seed.wrapping_mul(EPOCHS_APART).wrapping_add(epoch as u64)
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
