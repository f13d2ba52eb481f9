//! Procedurally generated long-tailed images: each class is a coloured sinusoidal grating with
//! its own orientation, spatial frequency and colour pair; each image jitters those and adds a
//! random phase, brightness and pixel noise. A small CNN separates the classes in a few epochs,
//! yet no two images are identical.

use super::cifar_lt::class_counts;
use super::seed::{rng_for, Stream};
use crate::config::data::ImbalanceProfile;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use std::f64::consts::PI;

/// Parameters of the synthetic source.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSpec {
    pub classes: usize,
    pub image_size: usize,
    /// Training images of the head class.
    pub train_per_class_max: usize,
    /// Test images per class (balanced).
    pub test_per_class: usize,
    /// Ratio of head to tail class count.
    pub imbalance: f64,
    pub profile: ImbalanceProfile,
    pub seed: u64,
}

/// One generated split: HWC RGB pixels of `labels.len()` square images.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSplit {
    pub pixels: Vec<u8>,
    pub labels: Vec<usize>,
}

struct ClassStyle {
    angle: f64,
    cycles: f64,
    fg: [f64; 3],
    bg: [f64; 3],
}

fn frac(x: f64) -> f64 {
    x - x.floor()
}

/// HSV (all in [0, 1]) to RGB in [0, 255].
fn hsv(h: f64, s: f64, v: f64) -> [f64; 3] {
    let k = |n: f64| {
        let k = (n + h * 6.0) % 6.0;
        v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
    };
    [k(5.0) * 255.0, k(3.0) * 255.0, k(1.0) * 255.0]
}

fn class_style(class: usize, classes: usize) -> ClassStyle {
    // Golden-ratio strides spread orientation and frequency evenly whatever the class count;
    // hue follows the class index so neighbouring classes differ in colour too.
    let c = class as f64;
    let hue = frac(c / classes as f64);
    ClassStyle {
        angle: PI * frac(c * 0.618_033_988_75),
        cycles: 1.0 + 3.0 * frac(c * 0.414_213_562_37 + 0.3),
        fg: hsv(hue, 0.85, 0.95),
        bg: hsv(frac(hue + 0.5), 0.6, 0.35),
    }
}

fn render(style: &ClassStyle, size: usize, seed: u64, out: &mut [u8]) {
    let mut rng = rng_for(Stream::Synthetic, &[seed]);
    let angle = style.angle + rng.random_range(-0.15..0.15);
    let cycles = style.cycles * rng.random_range(0.85..1.15);
    let phase = rng.random_range(0.0..2.0 * PI);
    let gain = rng.random_range(0.75..1.15);
    let noise = Normal::new(0.0, 14.0).expect("constant standard deviation is valid");
    let (sin, cos) = angle.sin_cos();
    let omega = 2.0 * PI * cycles / size as f64;
    for y in 0..size {
        for x in 0..size {
            let t = 0.5 + 0.5 * (omega * (x as f64 * cos + y as f64 * sin) + phase).sin();
            let px = &mut out[(y * size + x) * 3..][..3];
            for ((out, bg), fg) in px.iter_mut().zip(style.bg).zip(style.fg) {
                let v = gain * (bg + (fg - bg) * t) + noise.sample(&mut rng);
                *out = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

impl SyntheticSpec {
    /// Training images per class (the long-tailed profile, at least one image per class).
    pub fn train_counts(&self) -> Vec<usize> {
        class_counts(
            self.train_per_class_max as f64,
            self.classes,
            1.0 / self.imbalance,
            self.profile,
        )
        .into_iter()
        .map(|n| n.max(1))
        .collect()
    }

    /// Generates the long-tailed training split, ordered by class.
    pub fn train(&self) -> SyntheticSplit {
        self.generate(0, &self.train_counts())
    }

    /// Generates the balanced test split, ordered by class.
    pub fn test(&self) -> SyntheticSplit {
        self.generate(1, &vec![self.test_per_class; self.classes])
    }

    fn generate(&self, split: u64, counts: &[usize]) -> SyntheticSplit {
        let labels: Vec<usize> = counts
            .iter()
            .enumerate()
            .flat_map(|(c, &n)| std::iter::repeat_n(c, n))
            .collect();
        let styles: Vec<ClassStyle> = (0..self.classes).map(|c| class_style(c, self.classes)).collect();
        let side = self.image_size;
        let mut pixels = vec![0u8; labels.len() * side * side * 3];
        if side > 0 {
            pixels
                .par_chunks_mut(side * side * 3)
                .enumerate()
                .for_each(|(i, out)| {
                    let seed = super::seed::derive_seed(Stream::Synthetic, &[self.seed, split, i as u64]);
                    render(&styles[labels[i]], side, seed, out);
                });
        }
        SyntheticSplit { pixels, labels }
    }
}
