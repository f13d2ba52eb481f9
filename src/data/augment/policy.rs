//! AutoAugment (CIFAR-10 and ImageNet policies), RandAugment and TrivialAugment (wide), with
//! torchvision's magnitude tables: AutoAugment uses 10 magnitude bins, the other two 31;
//! TrivialAugment's ranges are wider.

use super::ops::{apply, Op};
use crate::config::data::AutoAugmentPolicy;
use image::RgbImage;
use rand::Rng;

/// Operation names of the policies; magnitudes are resolved per image size and bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
    Invert,
}

use Kind::*;

type SubPolicy = [(Kind, f64, usize); 2];

const CIFAR10: [SubPolicy; 25] = [
    [(Invert, 0.1, 0), (Contrast, 0.2, 6)],
    [(Rotate, 0.7, 2), (TranslateX, 0.3, 9)],
    [(Sharpness, 0.8, 1), (Sharpness, 0.9, 3)],
    [(ShearY, 0.5, 8), (TranslateY, 0.7, 9)],
    [(AutoContrast, 0.5, 0), (Equalize, 0.9, 0)],
    [(ShearY, 0.2, 7), (Posterize, 0.3, 7)],
    [(Color, 0.4, 3), (Brightness, 0.6, 7)],
    [(Sharpness, 0.3, 9), (Brightness, 0.7, 9)],
    [(Equalize, 0.6, 0), (Equalize, 0.5, 0)],
    [(Contrast, 0.6, 7), (Sharpness, 0.6, 5)],
    [(Color, 0.7, 7), (TranslateX, 0.5, 8)],
    [(Equalize, 0.3, 0), (AutoContrast, 0.4, 0)],
    [(TranslateY, 0.4, 3), (Sharpness, 0.2, 6)],
    [(Brightness, 0.9, 6), (Color, 0.2, 8)],
    [(Solarize, 0.5, 2), (Invert, 0.0, 0)],
    [(Equalize, 0.2, 0), (AutoContrast, 0.6, 0)],
    [(Equalize, 0.2, 0), (Equalize, 0.6, 0)],
    [(Color, 0.9, 9), (Equalize, 0.6, 0)],
    [(AutoContrast, 0.8, 0), (Solarize, 0.2, 8)],
    [(Brightness, 0.1, 3), (Color, 0.7, 0)],
    [(Solarize, 0.4, 5), (AutoContrast, 0.9, 0)],
    [(TranslateY, 0.9, 9), (TranslateY, 0.7, 9)],
    [(AutoContrast, 0.9, 0), (Solarize, 0.2, 3)],
    [(Equalize, 0.8, 0), (Invert, 0.1, 0)],
    [(TranslateY, 0.7, 9), (AutoContrast, 0.9, 0)],
];

const IMAGENET: [SubPolicy; 25] = [
    [(Posterize, 0.4, 8), (Rotate, 0.6, 9)],
    [(Solarize, 0.6, 5), (AutoContrast, 0.6, 0)],
    [(Equalize, 0.8, 0), (Equalize, 0.6, 0)],
    [(Posterize, 0.6, 7), (Posterize, 0.6, 6)],
    [(Equalize, 0.4, 0), (Solarize, 0.2, 4)],
    [(Equalize, 0.4, 0), (Rotate, 0.8, 8)],
    [(Solarize, 0.6, 3), (Equalize, 0.6, 0)],
    [(Posterize, 0.8, 5), (Equalize, 1.0, 0)],
    [(Rotate, 0.2, 3), (Solarize, 0.6, 8)],
    [(Equalize, 0.6, 0), (Posterize, 0.4, 6)],
    [(Rotate, 0.8, 8), (Color, 0.4, 0)],
    [(Rotate, 0.4, 9), (Equalize, 0.6, 0)],
    [(Equalize, 0.0, 0), (Equalize, 0.8, 0)],
    [(Invert, 0.6, 0), (Equalize, 1.0, 0)],
    [(Color, 0.6, 4), (Contrast, 1.0, 8)],
    [(Rotate, 0.8, 8), (Color, 1.0, 2)],
    [(Color, 0.8, 8), (Solarize, 0.8, 7)],
    [(Sharpness, 0.4, 7), (Invert, 0.6, 0)],
    [(ShearX, 0.6, 5), (Equalize, 1.0, 0)],
    [(Color, 0.4, 0), (Equalize, 0.6, 0)],
    [(Equalize, 0.4, 0), (Solarize, 0.2, 4)],
    [(Solarize, 0.6, 5), (AutoContrast, 0.6, 0)],
    [(Invert, 0.6, 0), (Equalize, 1.0, 0)],
    [(Color, 0.6, 4), (Contrast, 1.0, 8)],
    [(Equalize, 0.8, 0), (Equalize, 0.6, 0)],
];

/// RandAugment's and TrivialAugment's operation set (torchvision).
const RAND_OPS: [Kind; 14] = [
    Identity,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
    Rotate,
    Brightness,
    Color,
    Contrast,
    Sharpness,
    Posterize,
    Solarize,
    AutoContrast,
    Equalize,
];

fn linspace(lo: f32, hi: f32, bins: usize, bin: usize) -> f32 {
    if bins <= 1 {
        return lo;
    }
    lo + (hi - lo) * bin as f32 / (bins - 1) as f32
}

/// The magnitude ranges of an operation set (torchvision's `_augmentation_space`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Space {
    /// AutoAugment's and RandAugment's.
    Standard,
    /// TrivialAugment-wide's.
    Wide,
}

/// Resolves an operation at magnitude `bin` of `bins` for a `w`x`h` image; symmetric ops get a
/// random sign.
fn resolve(kind: Kind, bin: usize, bins: usize, space: Space, (w, h): (u32, u32), rng: &mut impl Rng) -> Op {
    let mut sign = || if rng.random_bool(0.5) { -1.0 } else { 1.0 };
    let lin = |hi: f32| linspace(0.0, hi, bins, bin);
    let wide = space == Space::Wide;
    let (shear, rotate, enhance) = if wide {
        (0.99, 135.0, 0.99)
    } else {
        (0.3, 30.0, 0.9)
    };
    // Wide translations are 32 pixels at most whatever the image size.
    let translate = |side: u32| if wide { 32.0 } else { 150.0 / 331.0 * side as f32 };
    // Posterize falls from 8 bits by 4 (standard) or 6 (wide) over the bins.
    let posterize_levels = if wide { 6.0 } else { 4.0 };
    match kind {
        Identity => Op::Identity,
        ShearX => Op::ShearX(sign() * lin(shear)),
        ShearY => Op::ShearY(sign() * lin(shear)),
        TranslateX => Op::TranslateX(sign() * lin(translate(w))),
        TranslateY => Op::TranslateY(sign() * lin(translate(h))),
        Rotate => Op::Rotate(sign() * lin(rotate)),
        Brightness => Op::Brightness(1.0 + sign() * lin(enhance)),
        Color => Op::Color(1.0 + sign() * lin(enhance)),
        Contrast => Op::Contrast(1.0 + sign() * lin(enhance)),
        Sharpness => Op::Sharpness(1.0 + sign() * lin(enhance)),
        Posterize => {
            let step = (bins.max(2) - 1) as f32 / posterize_levels;
            Op::Posterize((8.0 - (bin as f32 / step).round()).max(0.0) as u8)
        }
        Solarize => Op::Solarize(linspace(255.0, 0.0, bins, bin)),
        AutoContrast => Op::AutoContrast,
        Equalize => Op::Equalize,
        Invert => Op::Invert,
    }
}

/// AutoAugment: one of 25 sub-policies uniformly, each of its two ops applied with its
/// probability; or TrivialAugment, whichever `policy` names.
pub fn auto_augment(img: &mut RgbImage, policy: AutoAugmentPolicy, rng: &mut impl Rng) {
    let table = match policy {
        AutoAugmentPolicy::None => return,
        AutoAugmentPolicy::TrivialAugmentWide => return trivial_augment_wide(img, rng),
        AutoAugmentPolicy::Cifar10 => &CIFAR10,
        AutoAugmentPolicy::Imagenet => &IMAGENET,
    };
    let sub = &table[rng.random_range(0..table.len())];
    let size = img.dimensions();
    for &(kind, p, bin) in sub {
        if rng.random_bool(p) {
            let op = resolve(kind, bin, 10, Space::Standard, size, rng);
            apply(img, op);
        }
    }
}

/// RandAugment: `n` ops drawn uniformly (with replacement), each at magnitude bin `m` of 31.
pub fn rand_augment(img: &mut RgbImage, n: usize, m: usize, rng: &mut impl Rng) {
    let size = img.dimensions();
    for _ in 0..n {
        let kind = RAND_OPS[rng.random_range(0..RAND_OPS.len())];
        let op = resolve(kind, m, 31, Space::Standard, size, rng);
        apply(img, op);
    }
}

/// TrivialAugment (Müller & Hutter, 2021), torchvision's `TrivialAugmentWide`: one op of
/// RandAugment's set, at a magnitude bin drawn uniformly from 31, on the wide ranges.
fn trivial_augment_wide(img: &mut RgbImage, rng: &mut impl Rng) {
    let kind = RAND_OPS[rng.random_range(0..RAND_OPS.len())];
    let bin = rng.random_range(0..31);
    let op = resolve(kind, bin, 31, Space::Wide, img.dimensions(), rng);
    apply(img, op);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The size of `kind` at the top bin, whatever its sign.
    fn top(kind: Kind, space: Space) -> f32 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        match resolve(kind, 30, 31, space, (224, 224), &mut rng) {
            Op::ShearX(v) | Op::TranslateX(v) | Op::Rotate(v) => v.abs(),
            Op::Posterize(bits) => f32::from(bits),
            other => panic!("{other:?}"),
        }
    }

    /// torchvision's `TrivialAugmentWide._augmentation_space` at the top bin, beside
    /// RandAugment's: shear 0.99 (0.3), 32 pixels whatever the size (45% of it), 135° (30°),
    /// posterize to 2 bits (4).
    #[test]
    fn wide_ranges_are_torchvisions() {
        let expected = [
            (ShearX, 0.99, 0.3),
            (TranslateX, 32.0, 150.0 / 331.0 * 224.0),
            (Rotate, 135.0, 30.0),
            (Posterize, 2.0, 4.0),
        ];
        for (kind, wide, standard) in expected {
            assert_eq!(
                [top(kind, Space::Wide), top(kind, Space::Standard)],
                [wide, standard],
                "{kind:?}"
            );
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        assert_eq!(
            resolve(Posterize, 0, 31, Space::Wide, (32, 32), &mut rng),
            Op::Posterize(8)
        );
    }
}
