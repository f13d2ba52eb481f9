//! Per-epoch orders of training indices for each sampler kind. An order depends only on
//! (labels, sampler, seed, epoch), never on threads.

use super::seed::{rng_for, Stream};
use crate::config::data::SamplerKind;
use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::seq::SliceRandom;
use rand::Rng;

/// Everything a sampler needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    pub kind: SamplerKind,
    pub num_classes: usize,
    /// Epochs of the stage (the progressive sampler's horizon).
    pub total_epochs: usize,
    /// Copies per image for repeated augmentation.
    pub repeats: usize,
    pub seed: u64,
}

/// The dataset indices of one epoch; as many as there are training images.
pub fn epoch_order(cfg: &SamplerConfig, labels: &[usize], epoch: usize) -> Vec<usize> {
    let mut rng = rng_for(Stream::Sampler, &[cfg.seed, epoch as u64]);
    let n = labels.len();
    match cfg.kind {
        SamplerKind::Random => permutation(n, &mut rng),
        SamplerKind::RepeatedAug => {
            let r = cfg.repeats.max(1);
            // The reference (DeiT's RASampler, one process) keeps the first N rounded down to
            // a multiple of 256; tiny sets keep N so an epoch is never empty.
            let keep = if n >= 256 { n / 256 * 256 } else { n };
            permutation(n, &mut rng)
                .into_iter()
                .flat_map(|i| std::iter::repeat_n(i, r))
                .take(keep)
                .collect()
        }
        kind => {
            let weights = class_weights(kind, labels, cfg, epoch);
            by_class(labels, cfg.num_classes, &weights, &mut rng)
        }
    }
}

fn permutation(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    order
}

/// Unnormalised probability of drawing each class.
pub fn class_weights(kind: SamplerKind, labels: &[usize], cfg: &SamplerConfig, epoch: usize) -> Vec<f64> {
    let counts = super::split_list::count_per_class(labels, cfg.num_classes);
    let present = |n: usize| if n > 0 { 1.0 } else { 0.0 };
    match kind {
        SamplerKind::Sqrt => counts.iter().map(|&n| (n as f64).sqrt()).collect(),
        SamplerKind::Progressive => {
            // Epoch 0 is instance-balanced, the last epoch class-balanced.
            let t = if cfg.total_epochs > 1 {
                (epoch as f64 / (cfg.total_epochs - 1) as f64).min(1.0)
            } else {
                1.0
            };
            let total = labels.len().max(1) as f64;
            let classes = counts.iter().filter(|&&n| n > 0).count().max(1) as f64;
            counts
                .iter()
                .map(|&n| (1.0 - t) * n as f64 / total + t * present(n) / classes)
                .collect()
        }
        _ => counts.iter().map(|&n| present(n)).collect(),
    }
}

fn by_class(labels: &[usize], classes: usize, weights: &[f64], rng: &mut impl Rng) -> Vec<usize> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        members[l].push(i);
    }
    let Ok(pick) = WeightedIndex::new(weights) else {
        return Vec::new();
    };
    (0..labels.len())
        .map(|_| {
            let class = &members[pick.sample(rng)];
            class[rng.random_range(0..class.len())]
        })
        .collect()
}
