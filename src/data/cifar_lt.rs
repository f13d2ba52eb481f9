//! Long-tailed class counts and the reference CIFAR-LT subset construction
//! (`IMBALANCECIFAR10.get_img_num_per_cls` / `gen_imbalanced_data` of the AGLU repository).

use super::numpy_rng::NumpyRandomState;
use crate::config::data::ImbalanceProfile;

/// Per-class image counts of a long-tailed profile, computed in f64 and truncated exactly as the
/// reference (`int(img_max * imb_factor ** (c / (C - 1)))`). `img_max` is the head-class count.
pub fn class_counts(
    img_max: f64,
    num_classes: usize,
    imb_factor: f64,
    profile: ImbalanceProfile,
) -> Vec<usize> {
    match profile {
        ImbalanceProfile::Exp => (0..num_classes)
            .map(|c| {
                // A single class has no tail; the reference would divide by zero here.
                let exponent = if num_classes > 1 {
                    c as f64 / (num_classes as f64 - 1.0)
                } else {
                    0.0
                };
                (img_max * imb_factor.powf(exponent)) as usize
            })
            .collect(),
        ImbalanceProfile::Step => {
            let half = num_classes / 2;
            let mut counts = vec![img_max as usize; half];
            counts.extend(std::iter::repeat_n((img_max * imb_factor) as usize, half));
            // Odd class counts: the reference leaves the last class out; we give it the tail count
            // so every class exists.
            counts.resize(num_classes, (img_max * imb_factor) as usize);
            counts
        }
    }
}

/// The images the reference keeps: after `np.random.seed(seed)`, for each class in label order,
/// the class's positions are shuffled and the first `counts[c]` kept. Returns indices into
/// `labels`, grouped by class in that order (the reference's new data order).
pub fn select_subset(labels: &[usize], counts: &[usize], seed: u32) -> Vec<usize> {
    let mut rng = NumpyRandomState::new(seed);
    let mut kept = Vec::with_capacity(counts.iter().sum());
    for (class, &count) in counts.iter().enumerate() {
        let mut positions: Vec<usize> = labels
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == class)
            .map(|(i, _)| i)
            .collect();
        rng.shuffle(&mut positions);
        kept.extend(positions.into_iter().take(count));
    }
    kept
}
