//! The `data:` section of a run config: which dataset, where it lives, how it is augmented and
//! sampled. Defaults reproduce the plain CIFAR recipe (random crop with 4-pixel padding,
//! horizontal flip, CIFAR normalisation); the paper's heavier recipes (Table 8) are switched on
//! per field.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which data source a run trains and evaluates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Procedurally generated long-tailed images, built in memory (no files needed).
    SyntheticLt,
    /// Balanced CIFAR-10.
    Cifar10,
    /// Balanced CIFAR-100.
    Cifar100,
    /// Long-tailed subset of CIFAR-10 (reference construction, see `imbalance`).
    Cifar10Lt,
    /// Long-tailed subset of CIFAR-100 (reference construction, see `imbalance`).
    Cifar100Lt,
    /// ImageNet-LT split files over ImageNet images.
    ImagenetLt,
    /// Places-LT split files over Places365 images.
    PlacesLt,
    /// iNaturalist 2018 split files.
    Inat2018,
    /// Balanced ImageNet-1K, given as split files like the long-tailed sets.
    Imagenet,
    /// torchvision `ImageFolder` layout `<root>/<split>/<class>/*.{jpg,jpeg,png}`, classes
    /// numbered by sorted folder name; long-tailed by the CIFAR-LT construction unless
    /// `imbalance` is 1.
    ImageFolder,
    /// FineWeb-Edu's 10B-token sample as GPT-2 token shards (`data.text`), with HellaSwag for
    /// evaluation: language models only.
    FinewebEdu,
    /// A generated text corpus in a small formal language, and HellaSwag-format questions about
    /// it, built in memory: language models only.
    SyntheticText,
}

impl DatasetKind {
    /// Number of classes of the fixed benchmarks; `None` for the synthetic source, whose class
    /// count is a config field.
    pub fn fixed_classes(self) -> Option<usize> {
        match self {
            DatasetKind::SyntheticLt | DatasetKind::ImageFolder => None,
            DatasetKind::FinewebEdu | DatasetKind::SyntheticText => None,
            DatasetKind::Cifar10 | DatasetKind::Cifar10Lt => Some(10),
            DatasetKind::Cifar100 | DatasetKind::Cifar100Lt => Some(100),
            DatasetKind::ImagenetLt | DatasetKind::Imagenet => Some(1000),
            DatasetKind::PlacesLt => Some(365),
            DatasetKind::Inat2018 => Some(8142),
        }
    }

    /// True for the token corpora language models train on.
    pub fn is_text(self) -> bool {
        matches!(self, DatasetKind::FinewebEdu | DatasetKind::SyntheticText)
    }

    /// True for the datasets read from split-list files (decoded JPEG/PNG images).
    pub fn is_split_list(self) -> bool {
        matches!(
            self,
            DatasetKind::ImagenetLt | DatasetKind::PlacesLt | DatasetKind::Inat2018 | DatasetKind::Imagenet
        )
    }
}

/// How per-class training counts fall off from the head class to the tail class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImbalanceProfile {
    /// n_c = n_max * (1/imbalance)^(c/(C-1)), truncated to an integer.
    Exp,
    /// First half of the classes keep n_max, the second half n_max/imbalance.
    Step,
}

/// AutoAugment policy (Cubuk et al.), as in torchvision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoAugmentPolicy {
    /// No AutoAugment.
    None,
    /// The CIFAR-10 policy (used by the reference for CIFAR-LT).
    Cifar10,
    /// The ImageNet policy.
    Imagenet,
    /// Not AutoAugment's policies but its successor TrivialAugment, torchvision's
    /// `TrivialAugmentWide` (its training script's `--auto-augment ta_wide`).
    TrivialAugmentWide,
}

/// Order in which training examples are drawn each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplerKind {
    /// A fresh permutation of the training set every epoch (instance-balanced).
    Random,
    /// Each draw picks a class uniformly, then an image of it (with replacement).
    ClassBalanced,
    /// Each draw picks a class with probability proportional to sqrt(n_c).
    Sqrt,
    /// Class probabilities move linearly from instance-balanced (first epoch) to
    /// class-balanced (last epoch); used for classifier re-training.
    Progressive,
    /// Repeated augmentation: each drawn image appears `repeats` times in a row.
    RepeatedAug,
}

/// What to do with an image file that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBadImage {
    /// Stop with an error naming the file and split-file line.
    Fail,
    /// Drop the image from its batch, count it and print a warning.
    Skip,
}

/// RandAugment parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandAugmentConfig {
    /// Number of operations applied to each image.
    pub n: usize,
    /// Magnitude bin, 0..=30 (torchvision's 31 bins).
    pub m: usize,
}

/// The `data:` section of a run config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Data source.
    pub dataset: DatasetKind,
    /// Data root: CIFAR folders and split-list datasets live below it (see README).
    pub root: PathBuf,
    /// Whether missing CIFAR archives may be downloaded from the official URL.
    pub download: bool,
    /// Imbalance ratio n_max/n_min (100 means the reference's imb_factor 0.01).
    pub imbalance: f64,
    /// Shape of the long-tailed class-count profile.
    pub imbalance_profile: ImbalanceProfile,
    /// Seed of the long-tailed subset selection (the reference's `rand_number`, 0 there).
    pub subset_seed: u64,
    /// Number of classes; `None` takes the dataset's own (10 for the synthetic source).
    pub classes: Option<usize>,
    /// Side of the square training/eval images; `None` takes the dataset's native size
    /// (16 synthetic, 32 CIFAR, 224 for the ImageNet family).
    pub image_size: Option<usize>,
    /// Synthetic source: training images of the head class.
    pub train_per_class_max: usize,
    /// Synthetic source: test images per class (the test split is balanced).
    pub test_per_class: usize,
    /// Synthetic source: generator seed.
    pub synthetic_seed: u64,
    /// Split-list datasets: image root the split-file paths are relative to;
    /// `None` uses the dataset's folder below `root`.
    pub image_root: Option<PathBuf>,
    /// Split-list datasets: training split file; `None` uses the standard name.
    pub train_list: Option<PathBuf>,
    /// Split-list datasets: evaluation split file; `None` uses the standard name.
    pub test_list: Option<PathBuf>,
    /// `image_folder`: training split folder below `root`. Left out of the serialised config
    /// at its default so that run ids of configs written before it existed do not change.
    #[serde(skip_serializing_if = "is_default_train_split")]
    pub train_split: String,
    /// `image_folder`: evaluation split folder below `root` (`val` for ImageNet's layout).
    #[serde(skip_serializing_if = "is_default_test_split")]
    pub test_split: String,
    /// Random crop of `image_size` from the image padded by `crop_padding` zeros on each side.
    pub random_crop: bool,
    /// Zero padding for `random_crop` (4 for CIFAR).
    pub crop_padding: usize,
    /// Random horizontal flip with probability 0.5.
    pub hflip: bool,
    /// Random-resized-crop to `image_size` (ImageNet family); replaces `random_crop`.
    pub random_resized_crop: bool,
    /// Area fraction range of random-resized-crop.
    pub rrc_scale: [f64; 2],
    /// Aspect-ratio range of random-resized-crop.
    pub rrc_ratio: [f64; 2],
    /// Evaluation: resize the shorter side to this before the centre crop to `image_size`
    /// (256 for the ImageNet family); `None` skips resizing.
    pub eval_resize: Option<usize>,
    /// Per-channel mean subtracted after scaling pixels to [0, 1].
    pub normalize_mean: [f32; 3],
    /// Per-channel standard deviation divided after subtracting the mean.
    pub normalize_std: [f32; 3],
    /// Cutout square side in pixels; `None` disables Cutout (16 in the reference CIFAR recipe).
    pub cutout: Option<usize>,
    /// Number of Cutout squares per image.
    pub cutout_holes: usize,
    /// Random-erasing probability (0 disables; 0.1 for iNaturalist in Table 8).
    pub random_erasing: f64,
    /// AutoAugment policy.
    pub auto_augment: AutoAugmentPolicy,
    /// RandAugment; `None` disables it.
    pub rand_augment: Option<RandAugmentConfig>,
    /// Mixup Beta(α, α) parameter; 0 disables mixup.
    pub mixup_alpha: f64,
    /// CutMix Beta(α, α) parameter; 0 disables CutMix.
    pub cutmix_alpha: f64,
    /// Label-smoothing ε applied to the soft targets.
    pub label_smoothing: f64,
    /// Training sampler.
    pub sampler: SamplerKind,
    /// Repeats per image for the repeated-augmentation sampler.
    pub repeated_aug_repeats: usize,
    /// A class with more training images than this is in the "many" group.
    pub many_threshold: usize,
    /// A class with fewer training images than this is in the "few" group.
    pub few_threshold: usize,
    /// Handling of undecodable image files.
    pub on_bad_image: OnBadImage,
    /// Decoding/augmentation threads; 0 uses all cores.
    pub workers: usize,
    /// Batches prepared ahead of the training loop.
    pub prefetch: usize,
    /// The token corpora's settings (`fineweb_edu`, `synthetic_text`); left out of other runs'
    /// configs, so their ids do not change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
}

/// The `data.text:` section: how a language model reads its corpus and is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextConfig {
    /// Tokens per training sequence (T), at most the model's context.
    pub sequence_length: usize,
    /// Tokens trained on per epoch; `null`: one pass over every training shard. The stream
    /// continues across epochs and wraps around at its end, as build-nanogpt's loader does.
    pub epoch_tokens: Option<u64>,
    /// The validation loss is taken over this many tokens from the start of the validation
    /// shards (build-nanogpt: 20 batches of 64 × 1024).
    pub val_tokens: u64,
    /// Folder of token shards (build-nanogpt's `.npy` or llm.c's `.bin`, with `train` or `val`
    /// in their names); `null`: `<root>/edu_fineweb10B`.
    pub shards: Option<PathBuf>,
    /// HellaSwag's validation file (the official jsonl); `null`:
    /// `<root>/hellaswag/hellaswag_val.jsonl`, downloaded when missing and `download` is on.
    pub hellaswag: Option<PathBuf>,
    /// Evaluate only the first N HellaSwag questions; `null`: all of them.
    pub hellaswag_limit: Option<usize>,
    /// `synthetic_text`: training tokens generated (validation gets a tenth as many).
    pub synthetic_tokens: usize,
    /// `synthetic_text`: questions generated.
    pub synthetic_questions: usize,
}

impl Default for TextConfig {
    fn default() -> Self {
        Self {
            sequence_length: 1024,
            epoch_tokens: None,
            val_tokens: 20 * 64 * 1024,
            shards: None,
            hellaswag: None,
            hellaswag_limit: None,
            synthetic_tokens: 200_000,
            synthetic_questions: 200,
        }
    }
}
/// Default `data.train_split`.
pub const DEFAULT_TRAIN_SPLIT: &str = "train";
/// Default `data.test_split`.
pub const DEFAULT_TEST_SPLIT: &str = "test";

fn is_default_train_split(s: &str) -> bool {
    s == DEFAULT_TRAIN_SPLIT
}

fn is_default_test_split(s: &str) -> bool {
    s == DEFAULT_TEST_SPLIT
}

/// CIFAR channel statistics used by the reference code.
pub const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR channel standard deviations used by the reference code.
pub const CIFAR_STD: [f32; 3] = [0.2023, 0.1994, 0.2010];
/// ImageNet channel statistics (torchvision presets).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (torchvision presets).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::Cifar100Lt,
            root: PathBuf::from("data"),
            download: true,
            imbalance: 100.0,
            imbalance_profile: ImbalanceProfile::Exp,
            subset_seed: 0,
            classes: None,
            image_size: None,
            train_per_class_max: 500,
            test_per_class: 50,
            synthetic_seed: 0,
            image_root: None,
            train_list: None,
            test_list: None,
            train_split: DEFAULT_TRAIN_SPLIT.into(),
            test_split: DEFAULT_TEST_SPLIT.into(),
            random_crop: true,
            crop_padding: 4,
            hflip: true,
            random_resized_crop: false,
            rrc_scale: [0.08, 1.0],
            rrc_ratio: [3.0 / 4.0, 4.0 / 3.0],
            eval_resize: None,
            normalize_mean: CIFAR_MEAN,
            normalize_std: CIFAR_STD,
            cutout: None,
            cutout_holes: 1,
            random_erasing: 0.0,
            auto_augment: AutoAugmentPolicy::None,
            rand_augment: None,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            label_smoothing: 0.0,
            sampler: SamplerKind::Random,
            repeated_aug_repeats: 3,
            many_threshold: 100,
            few_threshold: 20,
            on_bad_image: OnBadImage::Fail,
            workers: 0,
            prefetch: 4,
            text: None,
        }
    }
}

impl DataConfig {
    /// The torchvision ImageNet-family recipe (random-resized-crop 224, flip, resize 256 +
    /// centre crop for evaluation, ImageNet statistics) for one of the split-list datasets.
    pub fn imagenet_family(dataset: DatasetKind) -> Self {
        DataConfig {
            dataset,
            random_crop: false,
            random_resized_crop: true,
            eval_resize: Some(256),
            normalize_mean: IMAGENET_MEAN,
            normalize_std: IMAGENET_STD,
            ..DataConfig::default()
        }
    }

    /// The token corpus settings, defaults where the section is left out.
    pub fn text(&self) -> TextConfig {
        self.text.clone().unwrap_or_default()
    }

    /// Number of classes this config produces.
    pub fn num_classes(&self) -> usize {
        self.classes.or(self.dataset.fixed_classes()).unwrap_or(10)
    }

    /// Side of the square images this config produces.
    pub fn resolved_image_size(&self) -> usize {
        self.image_size.unwrap_or(match self.dataset {
            DatasetKind::SyntheticLt => 16,
            d if d.is_split_list() => 224,
            _ => 32,
        })
    }

    /// The reference's `imb_factor` (1/imbalance).
    pub fn imb_factor(&self) -> f64 {
        1.0 / self.imbalance
    }

    /// Checks value ranges serde cannot express; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(bool, &str); 14] = [
            (
                self.dataset != DatasetKind::ImageFolder || self.classes.is_some(),
                "data.classes must be set for image_folder (the number of class folders; \
                 the model's head and the mixup targets are sized before the folder is read)",
            ),
            (
                [&self.train_split, &self.test_split]
                    .iter()
                    .all(|s| is_plain_folder_name(s)),
                "data.train_split and data.test_split must be single folder names",
            ),
            (self.imbalance >= 1.0, "data.imbalance must be >= 1"),
            (self.num_classes() >= 1, "data.classes must be >= 1"),
            (self.resolved_image_size() >= 1, "data.image_size must be >= 1"),
            (
                self.train_per_class_max >= 1,
                "data.train_per_class_max must be >= 1",
            ),
            (
                (0.0..=1.0).contains(&self.random_erasing),
                "data.random_erasing must be in [0, 1]",
            ),
            (
                self.mixup_alpha >= 0.0 && self.cutmix_alpha >= 0.0,
                "data.mixup_alpha and data.cutmix_alpha must be >= 0",
            ),
            (
                (0.0..1.0).contains(&self.label_smoothing),
                "data.label_smoothing must be in [0, 1)",
            ),
            (
                self.normalize_std.iter().all(|s| *s > 0.0),
                "data.normalize_std must be positive",
            ),
            (
                self.rrc_scale[0] > 0.0 && self.rrc_scale[0] <= self.rrc_scale[1],
                "data.rrc_scale must be 0 < low <= high",
            ),
            (
                self.rrc_ratio[0] > 0.0 && self.rrc_ratio[0] <= self.rrc_ratio[1],
                "data.rrc_ratio must be 0 < low <= high",
            ),
            (
                self.rand_augment.is_none_or(|r| r.m <= 30),
                "data.rand_augment.m must be in 0..=30",
            ),
            (
                self.repeated_aug_repeats >= 1 && self.prefetch >= 1,
                "data.repeated_aug_repeats and data.prefetch must be >= 1",
            ),
        ];
        if let Some((_, msg)) = checks.iter().find(|(ok, _)| !ok) {
            return Err((*msg).to_string());
        }
        let text = self.text();
        let text_checks: [(bool, &str); 4] = [
            (
                self.text.is_none() || self.dataset.is_text(),
                "data.text is for the token corpora (fineweb_edu, synthetic_text)",
            ),
            (
                text.sequence_length >= 1,
                "data.text.sequence_length must be >= 1",
            ),
            (
                text.epoch_tokens != Some(0) && text.val_tokens >= 1,
                "data.text.epoch_tokens and data.text.val_tokens must be >= 1",
            ),
            (
                text.synthetic_tokens >= 10 * text.sequence_length && text.synthetic_questions >= 1,
                "data.text.synthetic_tokens must be at least 10 sequences and synthetic_questions >= 1",
            ),
        ];
        match text_checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err((*msg).to_string()),
            None => Ok(()),
        }
    }
}

/// A non-empty name with no separator or `..`, so a split folder stays below the data root.
fn is_plain_folder_name(name: &str) -> bool {
    let path = std::path::Path::new(name);
    let mut parts = path.components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}
