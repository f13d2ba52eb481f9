//! Per-image augmentation pipelines: training (geometry, policy augmentation, occlusion,
//! normalisation) and evaluation (resize, centre crop, normalisation). Output is one CHW `f32`
//! image written into a caller-provided slice of the batch.

pub mod erase;
pub mod geometry;
pub mod ops;
pub mod policy;
pub mod resample;

use crate::config::data::{AutoAugmentPolicy, DataConfig, RandAugmentConfig};
use image::RgbImage;
use rand::Rng;

/// Per-channel normalisation applied after scaling pixels to [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalize {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalize {
    /// Writes `img` (must be `size`x`size`) as normalised CHW into `out` (3*size*size).
    pub fn write_chw(&self, img: &RgbImage, out: &mut [f32]) {
        let plane = (img.width() * img.height()) as usize;
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        for (i, p) in img.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = f32::from(p.0[c]) * scale[c] - shift[c];
            }
        }
    }
}

/// Training-time augmentation, in the reference order: crop (padded or random-resized) → flip
/// → AutoAugment/RandAugment → Cutout → normalise → random erasing.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTransform {
    pub size: usize,
    /// Zero padding of the random crop; `None` disables it.
    pub crop_padding: Option<usize>,
    /// Random-resized-crop (scale, ratio); replaces the padded crop when set.
    pub random_resized_crop: Option<([f64; 2], [f64; 2])>,
    pub hflip: bool,
    pub auto_augment: AutoAugmentPolicy,
    pub rand_augment: Option<RandAugmentConfig>,
    /// Cutout (side, holes).
    pub cutout: Option<(usize, usize)>,
    pub random_erasing: f64,
    pub normalize: Normalize,
}

/// Evaluation transform: optional shorter-side resize, centre crop, normalise.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalTransform {
    pub size: usize,
    pub resize: Option<usize>,
    pub normalize: Normalize,
}

impl TrainTransform {
    /// The training transform a config describes.
    pub fn from_config(cfg: &DataConfig) -> Self {
        TrainTransform {
            size: cfg.resolved_image_size(),
            crop_padding: cfg.random_crop.then_some(cfg.crop_padding),
            random_resized_crop: cfg.random_resized_crop.then_some((cfg.rrc_scale, cfg.rrc_ratio)),
            hflip: cfg.hflip,
            auto_augment: cfg.auto_augment,
            rand_augment: cfg.rand_augment,
            cutout: cfg.cutout.map(|len| (len, cfg.cutout_holes)),
            random_erasing: cfg.random_erasing,
            normalize: Normalize {
                mean: cfg.normalize_mean,
                std: cfg.normalize_std,
            },
        }
    }

    /// Augments one image into `out` (3*size*size floats, CHW).
    pub fn apply(&self, img: &RgbImage, rng: &mut impl Rng, out: &mut [f32]) {
        let mut img = self.geometry(img, rng);
        if self.hflip {
            geometry::random_hflip(&mut img, rng);
        }
        policy::auto_augment(&mut img, self.auto_augment, rng);
        if let Some(ra) = self.rand_augment {
            policy::rand_augment(&mut img, ra.n, ra.m, rng);
        }
        if let Some((len, holes)) = self.cutout {
            erase::cutout(&mut img, len, holes, rng);
        }
        self.normalize.write_chw(&img, out);
        erase::random_erasing(out, 3, self.size, self.size, self.random_erasing, rng);
    }

    fn geometry(&self, img: &RgbImage, rng: &mut impl Rng) -> RgbImage {
        if let Some((scale, ratio)) = self.random_resized_crop {
            return geometry::random_resized_crop(img, self.size, scale, ratio, rng);
        }
        let s = self.size as u32;
        let img = if img.dimensions() == (s, s) {
            img.clone()
        } else {
            geometry::center_crop(&geometry::resize_shorter(img, self.size), self.size)
        };
        match self.crop_padding {
            Some(pad) => geometry::random_crop_padded(&img, self.size, pad, rng),
            None => img,
        }
    }
}

impl EvalTransform {
    /// The evaluation transform a config describes.
    pub fn from_config(cfg: &DataConfig) -> Self {
        EvalTransform {
            size: cfg.resolved_image_size(),
            resize: cfg.eval_resize,
            normalize: Normalize {
                mean: cfg.normalize_mean,
                std: cfg.normalize_std,
            },
        }
    }

    /// Transforms one image into `out` (3*size*size floats, CHW).
    pub fn apply(&self, img: &RgbImage, out: &mut [f32]) {
        let resized = match self.resize {
            Some(r) => geometry::resize_shorter(img, r),
            None => img.clone(),
        };
        let cropped = geometry::center_crop(&resized, self.size);
        self.normalize.write_chw(&cropped, out);
    }
}
