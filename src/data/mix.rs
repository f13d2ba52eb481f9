//! Batch-level label mixing: label smoothing, mixup and CutMix (torchvision reference-script
//! semantics: the partner of image i is image i-1 of the batch, λ ~ Beta(α, α) once per batch,
//! probability 1; with both enabled each batch picks one of them 50/50).

use crate::config::data::DataConfig;
use rand::Rng;
use rand_distr::{Beta, Distribution};

/// Mixing settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixConfig {
    pub num_classes: usize,
    pub mixup_alpha: f64,
    pub cutmix_alpha: f64,
    pub label_smoothing: f64,
}

impl MixConfig {
    /// The mixing a config describes.
    pub fn from_config(cfg: &DataConfig) -> Self {
        MixConfig {
            num_classes: cfg.num_classes(),
            mixup_alpha: cfg.mixup_alpha,
            cutmix_alpha: cfg.cutmix_alpha,
            label_smoothing: cfg.label_smoothing,
        }
    }

    /// True when batches carry soft targets.
    pub fn produces_soft_targets(&self) -> bool {
        self.mixup_alpha > 0.0 || self.cutmix_alpha > 0.0 || self.label_smoothing > 0.0
    }

    /// Mixes the batch in place (NCHW `images` of `shape`) and returns soft targets
    /// (N x classes, rows summing to 1), or `None` when no mixing or smoothing is configured.
    pub fn apply(
        &self,
        images: &mut [f32],
        shape: [usize; 4],
        labels: &[usize],
        rng: &mut impl Rng,
    ) -> Option<Vec<f32>> {
        if !self.produces_soft_targets() {
            return None;
        }
        let targets = self.smoothed(labels);
        let use_mixup = match (self.mixup_alpha > 0.0, self.cutmix_alpha > 0.0) {
            (false, false) => return Some(targets),
            (true, false) => true,
            (false, true) => false,
            (true, true) => rng.random_bool(0.5),
        };
        let alpha = if use_mixup {
            self.mixup_alpha
        } else {
            self.cutmix_alpha
        };
        let lambda = beta(alpha, rng);
        let lambda = if use_mixup {
            mixup(images, shape, lambda);
            lambda
        } else {
            cutmix(images, shape, lambda, rng)
        };
        Some(mix_rows(&targets, self.num_classes, lambda))
    }

    /// One-hot rows with label smoothing: (1-ε)·onehot + ε/C.
    pub fn smoothed(&self, labels: &[usize]) -> Vec<f32> {
        let c = self.num_classes;
        let off = (self.label_smoothing / c as f64) as f32;
        let on = (1.0 - self.label_smoothing) as f32 + off;
        let mut t = vec![off; labels.len() * c];
        for (i, &l) in labels.iter().enumerate() {
            t[i * c + l] = on;
        }
        t
    }
}

fn beta(alpha: f64, rng: &mut impl Rng) -> f64 {
    Beta::new(alpha, alpha).map_or(1.0, |b| b.sample(rng))
}

/// Index of image i's partner (torch.roll(x, 1, 0)).
fn partner(i: usize, n: usize) -> usize {
    (i + n - 1) % n
}

fn mixup(images: &mut [f32], shape: [usize; 4], lambda: f64) {
    let n = shape[0];
    let per = shape[1] * shape[2] * shape[3];
    let original = images.to_vec();
    let (l, r) = (lambda as f32, (1.0 - lambda) as f32);
    for i in 0..n {
        let other = &original[partner(i, n) * per..][..per];
        for (x, y) in images[i * per..][..per].iter_mut().zip(other) {
            *x = l * *x + r * *y;
        }
    }
}

/// Pastes the partner's box into every image; returns λ corrected to the pasted area.
fn cutmix(images: &mut [f32], shape: [usize; 4], lambda: f64, rng: &mut impl Rng) -> f64 {
    let [n, c, h, w] = shape;
    let cx = rng.random_range(0..w) as i64;
    let cy = rng.random_range(0..h) as i64;
    let r = 0.5 * (1.0 - lambda).sqrt();
    let (rw, rh) = ((r * w as f64) as i64, (r * h as f64) as i64);
    let (x1, x2) = (
        (cx - rw).clamp(0, w as i64) as usize,
        (cx + rw).clamp(0, w as i64) as usize,
    );
    let (y1, y2) = (
        (cy - rh).clamp(0, h as i64) as usize,
        (cy + rh).clamp(0, h as i64) as usize,
    );
    let original = images.to_vec();
    let per = c * h * w;
    for i in 0..n {
        let j = partner(i, n);
        for ch in 0..c {
            for y in y1..y2 {
                let row = ch * h * w + y * w;
                images[i * per + row + x1..i * per + row + x2]
                    .copy_from_slice(&original[j * per + row + x1..j * per + row + x2]);
            }
        }
    }
    1.0 - ((x2 - x1) * (y2 - y1)) as f64 / (w * h) as f64
}

fn mix_rows(targets: &[f32], classes: usize, lambda: f64) -> Vec<f32> {
    let n = targets.len() / classes;
    let (l, r) = (lambda as f32, (1.0 - lambda) as f32);
    let mut out = vec![0.0; targets.len()];
    for i in 0..n {
        let j = partner(i, n);
        for k in 0..classes {
            out[i * classes + k] = l * targets[i * classes + k] + r * targets[j * classes + k];
        }
    }
    out
}
