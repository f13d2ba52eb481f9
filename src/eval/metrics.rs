//! Classification metrics on plain logits (`[N × C]`, row-major) and labels. Backend-free so
//! they are exact and testable by hand.

use crate::config::eval::LogitAdjustment;
use crate::data::Group;
use crate::result::Bin;

/// Adds the post-hoc adjustment to every row of `logits`, from the training class counts.
pub fn adjust_logits(logits: &mut [f32], classes: usize, counts: &[usize], kind: LogitAdjustment) {
    let total: f64 = counts.iter().map(|&n| n as f64).sum();
    let offset: Vec<f32> = counts
        .iter()
        .map(|&n| {
            let n = (n as f64).max(1.0);
            match kind {
                LogitAdjustment::None => 0.0,
                LogitAdjustment::PcSoftmax => (total / n).ln() as f32,
                LogitAdjustment::PcSoftmaxRel => ((total - n).max(1.0) / n).ln() as f32,
            }
        })
        .collect();
    for row in logits.chunks_exact_mut(classes) {
        for (l, o) in row.iter_mut().zip(&offset) {
            *l += o;
        }
    }
}

/// Row-wise softmax probabilities (numerically stable).
pub fn softmax(logits: &[f32], classes: usize) -> Vec<f64> {
    logits
        .chunks_exact(classes)
        .flat_map(|row| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let exp: Vec<f64> = row.iter().map(|&l| (l as f64 - max).exp()).collect();
            let sum: f64 = exp.iter().sum();
            exp.into_iter().map(move |e| e / sum)
        })
        .collect()
}

/// Whether each sample's label is among its `k` highest logits (ties broken towards the
/// lower class index, as a stable sort would).
pub fn top_k_hits(logits: &[f32], classes: usize, labels: &[usize], k: usize) -> Vec<bool> {
    logits
        .chunks_exact(classes)
        .zip(labels)
        .map(|(row, &label)| {
            let target = row[label];
            let better = row
                .iter()
                .enumerate()
                .filter(|&(c, &l)| l > target || (l == target && c < label))
                .count();
            better < k
        })
        .collect()
}

/// Per-class (correct, total) counts of top-1 hits.
pub fn per_class(hits: &[bool], labels: &[usize], classes: usize) -> Vec<(usize, usize)> {
    let mut counts = vec![(0, 0); classes];
    for (&hit, &label) in hits.iter().zip(labels) {
        counts[label].1 += 1;
        counts[label].0 += usize::from(hit);
    }
    counts
}

/// Accuracy (%) over the samples of the classes in `group`, `None` when the group is empty.
pub fn group_accuracy(per_class: &[(usize, usize)], groups: &[Group], group: Group) -> Option<f64> {
    let (correct, total) = per_class
        .iter()
        .zip(groups)
        .filter(|(_, g)| **g == group)
        .fold((0, 0), |(c, t), ((cc, tt), _)| (c + cc, t + tt));
    (total > 0).then(|| 100.0 * correct as f64 / total as f64)
}

/// Expected calibration error (equal-width confidence bins, as Guo et al. 2017) and the bins.
pub fn calibration(probs: &[f64], classes: usize, labels: &[usize], bins: usize) -> (f64, Vec<Bin>) {
    let mut sums = vec![(0usize, 0.0f64, 0usize); bins];
    for (row, &label) in probs.chunks_exact(classes).zip(labels) {
        let (pred, conf) =
            row.iter().enumerate().fold(
                (0, f64::NEG_INFINITY),
                |best, (c, &p)| if p > best.1 { (c, p) } else { best },
            );
        // Bin i holds confidences in (i/bins, (i+1)/bins]; 0 goes to the first bin.
        let bin = ((conf * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        let entry = &mut sums[bin];
        entry.0 += 1;
        entry.1 += conf;
        entry.2 += usize::from(pred == label);
    }
    let n = labels.len().max(1) as f64;
    let mut ece = 0.0;
    let table = sums
        .iter()
        .enumerate()
        .map(|(i, &(count, conf_sum, correct))| {
            let (mean_confidence, accuracy) = if count > 0 {
                (conf_sum / count as f64, correct as f64 / count as f64)
            } else {
                (0.0, 0.0)
            };
            ece += count as f64 / n * (mean_confidence - accuracy).abs();
            Bin {
                lower: i as f64 / bins as f64,
                upper: (i + 1) as f64 / bins as f64,
                count,
                mean_confidence,
                accuracy,
            }
        })
        .collect();
    (ece, table)
}

/// Mean negative log-likelihood of the labels.
pub fn nll(probs: &[f64], classes: usize, labels: &[usize]) -> f64 {
    let total: f64 = probs
        .chunks_exact(classes)
        .zip(labels)
        .map(|(row, &l)| -row[l].max(f64::MIN_POSITIVE).ln())
        .sum();
    total / labels.len().max(1) as f64
}
