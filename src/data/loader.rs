//! Batching: decode + augment in parallel on a dedicated rayon pool, on a producer thread, with a
//! bounded queue of ready batches. Every random draw is seeded from (seed, epoch, position in the
//! epoch) or (seed, epoch, batch), so a run's batches are identical whatever the thread count.

use super::augment::{EvalTransform, TrainTransform};
use super::dataset::{Dataset, Split, SplitKind};
use super::error::DataError;
use super::mix::MixConfig;
use super::sampler::{epoch_order, SamplerConfig};
use super::seed::{rng_for, Stream};
use crate::config::data::{DataConfig, OnBadImage};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One batch, ready for the tensor library.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// N*C*H*W floats, NCHW row-major, normalised.
    pub images: Vec<f32>,
    /// [N, C, H, W].
    pub shape: [usize; 4],
    /// Hard label of each image (the first image's label under mixing).
    pub labels: Vec<usize>,
    /// N*classes soft targets (rows sum to 1) when mixup, CutMix or label smoothing is on.
    pub soft_targets: Option<Vec<f32>>,
    /// Dataset index of each image (for per-example bookkeeping and debugging).
    pub indices: Vec<usize>,
}

/// Produces training epochs and evaluation passes over a dataset.
pub struct Loader {
    dataset: Arc<Dataset>,
    train_tf: Arc<TrainTransform>,
    eval_tf: Arc<EvalTransform>,
    mix: MixConfig,
    sampler: SamplerConfig,
    batch_size: usize,
    prefetch: usize,
    on_bad_image: OnBadImage,
    seed: u64,
    pool: Arc<rayon::ThreadPool>,
    skipped: Arc<AtomicUsize>,
}

/// What one producer pass does.
#[derive(Clone)]
enum Pass {
    Train { epoch: usize },
    Eval(SplitKind),
}

impl Loader {
    /// A loader for `dataset` with the augmentation, sampler and threading of `cfg`;
    /// `total_epochs` is the stage length (for the progressive sampler), `seed` the run seed.
    pub fn new(
        dataset: Arc<Dataset>,
        cfg: &DataConfig,
        batch_size: usize,
        total_epochs: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        cfg.validate().map_err(DataError::Config)?;
        if batch_size == 0 {
            return Err(DataError::Config("batch size must be >= 1".into()));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cfg.workers)
            .thread_name(|i| format!("repro-data-{i}"))
            .build()
            .map_err(|e| DataError::Config(format!("cannot start data workers: {e}")))?;
        Ok(Loader {
            mix: MixConfig {
                num_classes: dataset.num_classes,
                ..MixConfig::from_config(cfg)
            },
            sampler: SamplerConfig {
                kind: cfg.sampler,
                num_classes: dataset.num_classes,
                total_epochs,
                repeats: cfg.repeated_aug_repeats,
                seed,
            },
            train_tf: Arc::new(TrainTransform::from_config(cfg)),
            eval_tf: Arc::new(EvalTransform::from_config(cfg)),
            dataset,
            batch_size,
            prefetch: cfg.prefetch,
            on_bad_image: cfg.on_bad_image,
            seed,
            pool: Arc::new(pool),
            skipped: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The dataset being served.
    pub fn dataset(&self) -> &Dataset {
        &self.dataset
    }

    /// Number of batches in a training epoch (the last one may be smaller).
    pub fn steps_per_epoch(&self) -> usize {
        self.dataset.train.len().div_ceil(self.batch_size)
    }

    /// Images skipped as undecodable so far (with `on_bad_image: skip`).
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The augmented, sampled, mixed batches of training epoch `epoch`.
    pub fn train_epoch(&self, epoch: usize) -> BatchIter {
        let order = epoch_order(&self.sampler, &self.dataset.train.labels, epoch);
        self.spawn(order, Pass::Train { epoch })
    }

    /// A split in order, with the evaluation transform only (the test split for accuracy, the
    /// training split for feature analyses).
    pub fn eval_batches(&self, split: SplitKind) -> BatchIter {
        let n = self.dataset.split(split).len();
        self.spawn((0..n).collect(), Pass::Eval(split))
    }

    fn spawn(&self, order: Vec<usize>, pass: Pass) -> BatchIter {
        let (tx, rx) = sync_channel(self.prefetch);
        let worker = BatchMaker {
            dataset: Arc::clone(&self.dataset),
            train_tf: Arc::clone(&self.train_tf),
            eval_tf: Arc::clone(&self.eval_tf),
            mix: self.mix,
            on_bad_image: self.on_bad_image,
            seed: self.seed,
            skipped: Arc::clone(&self.skipped),
            pass,
        };
        let pool = Arc::clone(&self.pool);
        let batch_size = self.batch_size;
        let handle = std::thread::spawn(move || {
            for (b, chunk) in order.chunks(batch_size).enumerate() {
                let made = pool.install(|| worker.make(b, b * batch_size, chunk));
                let stop = made.is_err();
                let sent = match made {
                    Ok(None) => continue,
                    Ok(Some(batch)) => tx.send(Ok(batch)),
                    Err(e) => tx.send(Err(e)),
                };
                // A closed channel means the consumer dropped the iterator: stop quietly.
                if sent.is_err() || stop {
                    return;
                }
            }
        });
        BatchIter {
            rx: Some(rx),
            handle: Some(handle),
        }
    }
}

struct BatchMaker {
    dataset: Arc<Dataset>,
    train_tf: Arc<TrainTransform>,
    eval_tf: Arc<EvalTransform>,
    mix: MixConfig,
    on_bad_image: OnBadImage,
    seed: u64,
    skipped: Arc<AtomicUsize>,
    pass: Pass,
}

impl BatchMaker {
    fn split(&self) -> &Split {
        match self.pass {
            Pass::Train { .. } => &self.dataset.train,
            Pass::Eval(kind) => self.dataset.split(kind),
        }
    }

    fn size(&self) -> usize {
        match self.pass {
            Pass::Train { .. } => self.train_tf.size,
            Pass::Eval(_) => self.eval_tf.size,
        }
    }

    /// One image, transformed; `position` is its place in the epoch order (the seed key).
    fn example(&self, position: usize, index: usize) -> Result<Vec<f32>, DataError> {
        let img = self.split().image(index)?;
        let mut out = vec![0.0; 3 * self.size() * self.size()];
        match self.pass {
            Pass::Train { epoch } => {
                let mut rng = rng_for(Stream::Augment, &[self.seed, epoch as u64, position as u64]);
                self.train_tf.apply(&img, &mut rng, &mut out);
            }
            Pass::Eval(_) => self.eval_tf.apply(&img, &mut out),
        }
        Ok(out)
    }

    /// Batch `b`, whose first image is at epoch position `start`; `None` if every image of it
    /// was skipped.
    fn make(&self, b: usize, start: usize, chunk: &[usize]) -> Result<Option<Batch>, DataError> {
        let results: Vec<Result<Vec<f32>, DataError>> = chunk
            .par_iter()
            .enumerate()
            .map(|(k, &index)| self.example(start + k, index))
            .collect();
        let mut images = Vec::with_capacity(results.len() * 3 * self.size() * self.size());
        let mut indices = Vec::with_capacity(chunk.len());
        for (result, &index) in results.into_iter().zip(chunk) {
            match result {
                Ok(pixels) => {
                    images.extend(pixels);
                    indices.push(index);
                }
                Err(e) => self.skip_or_fail(e)?,
            }
        }
        if indices.is_empty() {
            return Ok(None);
        }
        let labels: Vec<usize> = indices.iter().map(|&i| self.split().labels[i]).collect();
        let shape = [indices.len(), 3, self.size(), self.size()];
        let soft_targets = match self.pass {
            Pass::Train { epoch } => {
                let mut rng = rng_for(Stream::Mix, &[self.seed, epoch as u64, b as u64]);
                self.mix.apply(&mut images, shape, &labels, &mut rng)
            }
            Pass::Eval(_) => None,
        };
        Ok(Some(Batch {
            images,
            shape,
            labels,
            soft_targets,
            indices,
        }))
    }

    fn skip_or_fail(&self, e: DataError) -> Result<(), DataError> {
        match (&e, self.on_bad_image) {
            (DataError::Decode { .. } | DataError::Image { .. }, OnBadImage::Skip) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                eprintln!("warning: skipping image: {e}");
                Ok(())
            }
            _ => Err(e),
        }
    }
}

/// Iterator over the batches of one pass; dropping it stops the producer.
pub struct BatchIter {
    rx: Option<Receiver<Result<Batch, DataError>>>,
    handle: Option<JoinHandle<()>>,
}

impl Iterator for BatchIter {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.as_ref()?.recv() {
            Ok(item) => Some(item),
            // The producer is gone: either the pass is complete or it panicked; a panic must not
            // pass for the end of an epoch.
            Err(_) => {
                let panic = self.handle.take()?.join().err()?;
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Some(Err(DataError::WorkerPanicked(msg)))
            }
        }
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        // Closing the receiver first makes a producer blocked on a full queue return.
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            // Nobody is left to report a panic to once the iterator is dropped.
            let _ = h.join();
        }
    }
}
