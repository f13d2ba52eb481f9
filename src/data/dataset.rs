//! A loaded dataset: train and test splits with labels, per-class training counts, and a way to
//! get any image as RGB. Built from a `DataConfig` by `load_dataset`.

use super::cifar::{self, CifarVariant};
use super::cifar_lt::{class_counts, select_subset};
use super::error::DataError;
use super::groups::{Group, GroupThresholds};
use super::image_folder::{self, FolderSplit};
use super::split_list::{self, ClassMap, SplitEntry};
use super::synthetic::SyntheticSpec;
use crate::config::data::{DataConfig, DatasetKind};
use image::RgbImage;
use std::path::{Path, PathBuf};

/// Where a split's images live.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Same-size RGB images packed back to back, HWC.
    Packed {
        pixels: Vec<u8>,
        height: usize,
        width: usize,
    },
    /// Image files decoded on demand.
    Files(Vec<SplitEntry>),
    /// Image-folder files decoded on demand (too large or too varied in size to keep decoded).
    Paths(Vec<PathBuf>),
}

/// One split (train or test).
#[derive(Debug, Clone)]
pub struct Split {
    /// Label of each image (after any relabelling).
    pub labels: Vec<usize>,
    pub storage: Storage,
}

impl Split {
    /// Packed in-memory images of one size.
    pub fn packed(pixels: Vec<u8>, labels: Vec<usize>, height: usize, width: usize) -> Self {
        Split {
            labels,
            storage: Storage::Packed {
                pixels,
                height,
                width,
            },
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `index` as RGB (decoded from disk for file-backed splits).
    pub fn image(&self, index: usize) -> Result<RgbImage, DataError> {
        match &self.storage {
            Storage::Packed {
                pixels,
                height,
                width,
            } => {
                let n = height * width * 3;
                let data = pixels[index * n..(index + 1) * n].to_vec();
                RgbImage::from_raw(*width as u32, *height as u32, data)
                    .ok_or_else(|| DataError::Config("packed image buffer has the wrong size".into()))
            }
            Storage::Files(entries) => split_list::decode(&entries[index]),
            Storage::Paths(paths) => image_folder::decode(&paths[index]),
        }
    }
}

/// Which split of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitKind {
    Train,
    Test,
}

/// A dataset ready for the loader.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub train: Split,
    pub test: Split,
    pub num_classes: usize,
    /// Training images per class (index = label).
    pub class_counts: Vec<usize>,
    /// Original label of each class, where classes were relabelled by frequency.
    pub original_labels: Vec<usize>,
}

impl Dataset {
    /// One of the two splits.
    pub fn split(&self, kind: SplitKind) -> &Split {
        match kind {
            SplitKind::Train => &self.train,
            SplitKind::Test => &self.test,
        }
    }

    /// Many/medium/few group of each class.
    pub fn groups(&self, thresholds: GroupThresholds) -> Vec<Group> {
        thresholds.groups(&self.class_counts)
    }
}

/// Loads (and, for CIFAR, downloads if allowed) the dataset a config names.
pub fn load_dataset(cfg: &DataConfig) -> Result<Dataset, DataError> {
    cfg.validate().map_err(DataError::Config)?;
    match cfg.dataset {
        DatasetKind::SyntheticLt => Ok(synthetic(cfg)),
        DatasetKind::Cifar10 | DatasetKind::Cifar10Lt => cifar(cfg, CifarVariant::Cifar10),
        DatasetKind::Cifar100 | DatasetKind::Cifar100Lt => cifar(cfg, CifarVariant::Cifar100),
        DatasetKind::ImageFolder => folder_dataset(cfg),
        DatasetKind::FinewebEdu | DatasetKind::SyntheticText => Err(DataError::Config(format!(
            "data.dataset {:?} is a token corpus, not an image dataset",
            cfg.dataset
        ))),
        _ => split_lists(cfg),
    }
}

fn synthetic_spec(cfg: &DataConfig) -> SyntheticSpec {
    SyntheticSpec {
        classes: cfg.num_classes(),
        image_size: cfg.resolved_image_size(),
        train_per_class_max: cfg.train_per_class_max,
        test_per_class: cfg.test_per_class,
        imbalance: cfg.imbalance,
        profile: cfg.imbalance_profile,
        seed: cfg.synthetic_seed,
    }
}

/// Training images per epoch a config will have, without reading any file: exact for the
/// synthetic and CIFAR sources, the published split sizes for the split-list datasets (for
/// `repro plan`'s cost estimate). Image folders are counted by listing the training folder (no
/// decoding); an unreadable folder counts 0, the run itself reports why.
pub fn train_size(cfg: &DataConfig) -> usize {
    let long_tailed = |head: f64| {
        crate::data::cifar_lt::class_counts(head, cfg.num_classes(), cfg.imb_factor(), cfg.imbalance_profile)
            .iter()
            .sum()
    };
    match cfg.dataset {
        DatasetKind::SyntheticLt => synthetic_spec(cfg).train_counts().iter().sum(),
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => 50_000,
        DatasetKind::Cifar10Lt => long_tailed(5_000.0),
        DatasetKind::Cifar100Lt => long_tailed(500.0),
        DatasetKind::ImagenetLt => 115_846,
        DatasetKind::PlacesLt => 62_500,
        DatasetKind::Inat2018 => 437_513,
        DatasetKind::Imagenet => 1_281_167,
        DatasetKind::FinewebEdu | DatasetKind::SyntheticText => crate::data::text::sequences_per_epoch(cfg),
        DatasetKind::ImageFolder => {
            let dir = cfg.root.join(&cfg.train_split);
            let per_class = image_folder::count_images(&dir).unwrap_or_default();
            if cfg.imbalance == 1.0 || per_class.is_empty() {
                per_class.iter().sum()
            } else {
                let head = per_class.iter().sum::<usize>() as f64 / per_class.len() as f64;
                crate::data::cifar_lt::class_counts(
                    head,
                    per_class.len(),
                    cfg.imb_factor(),
                    cfg.imbalance_profile,
                )
                .iter()
                .zip(&per_class)
                .map(|(want, have)| (*want).min(*have))
                .sum()
            }
        }
    }
}

fn synthetic(cfg: &DataConfig) -> Dataset {
    let spec = synthetic_spec(cfg);
    let side = spec.image_size;
    let (train, test) = rayon::join(|| spec.train(), || spec.test());
    Dataset {
        kind: cfg.dataset,
        train: Split::packed(train.pixels, train.labels, side, side),
        test: Split::packed(test.pixels, test.labels, side, side),
        num_classes: spec.classes,
        class_counts: spec.train_counts(),
        original_labels: (0..spec.classes).collect(),
    }
}

fn cifar(cfg: &DataConfig, variant: CifarVariant) -> Result<Dataset, DataError> {
    let root = cfg.root.as_path();
    let mut train = cifar::load(root, variant, true, cfg.download)?;
    let test = cifar::load(root, variant, false, cfg.download)?;
    let classes = variant.classes();
    if matches!(cfg.dataset, DatasetKind::Cifar10Lt | DatasetKind::Cifar100Lt) {
        train = long_tailed(cfg, &train, classes)?;
    }
    let side = cifar::SIDE;
    let counts = split_list::count_per_class(&train.labels, classes);
    Ok(Dataset {
        kind: cfg.dataset,
        train: Split::packed(train.pixels, train.labels, side, side),
        test: Split::packed(test.pixels, test.labels, side, side),
        num_classes: classes,
        class_counts: counts,
        original_labels: (0..classes).collect(),
    })
}

/// The reference CIFAR-LT subset of a balanced training split.
pub fn long_tailed(
    cfg: &DataConfig,
    train: &cifar::CifarSplit,
    classes: usize,
) -> Result<cifar::CifarSplit, DataError> {
    Ok(train.select(&long_tailed_indices(cfg, &train.labels, classes)?))
}

/// Which images of a training split the reference CIFAR-LT construction keeps, in its order:
/// head count = images / classes, as `IMBALANCECIFAR10.get_img_num_per_cls`.
pub fn long_tailed_indices(
    cfg: &DataConfig,
    labels: &[usize],
    classes: usize,
) -> Result<Vec<usize>, DataError> {
    let seed = u32::try_from(cfg.subset_seed)
        .map_err(|_| DataError::Config("data.subset_seed must be below 2^32 (numpy)".into()))?;
    let img_max = labels.len() as f64 / classes as f64;
    let counts = class_counts(img_max, classes, cfg.imb_factor(), cfg.imbalance_profile);
    Ok(select_subset(labels, &counts, seed))
}

/// An image-folder dataset: class folders of the training split define the classes; the
/// training split is made long-tailed exactly as CIFAR-LT unless `imbalance` is 1.
fn folder_dataset(cfg: &DataConfig) -> Result<Dataset, DataError> {
    if !cfg.root.is_dir() {
        return Err(DataError::MissingFolder {
            path: cfg.root.clone(),
            what: "data root (data.root)",
        });
    }
    let train_dir = cfg.root.join(&cfg.train_split);
    let test_dir = cfg.root.join(&cfg.test_split);
    let names = image_folder::class_names(&train_dir)?;
    let classes = cfg.num_classes();
    if names.len() != classes {
        return Err(DataError::Config(format!(
            "{}: {} class folders, but data.classes (and model.num_classes) is {classes}",
            train_dir.display(),
            names.len()
        )));
    }
    let mut train = image_folder::scan(&train_dir, &names, &train_dir)?;
    let test = image_folder::scan(&test_dir, &names, &train_dir)?;
    if cfg.imbalance != 1.0 {
        train = train.select(&long_tailed_indices(cfg, &train.labels, classes)?);
    }
    let (train, test) = rayon::join(
        || folder_split(train, cfg.on_bad_image),
        || folder_split(test, cfg.on_bad_image),
    );
    let train = train?;
    Ok(Dataset {
        kind: cfg.dataset,
        class_counts: split_list::count_per_class(&train.labels, classes),
        train,
        test: test?,
        num_classes: classes,
        original_labels: (0..classes).collect(),
    })
}

fn folder_split(split: FolderSplit, on_bad: crate::config::data::OnBadImage) -> Result<Split, DataError> {
    Ok(match image_folder::decode_all(split, on_bad)? {
        Ok(d) => Split::packed(d.pixels, d.labels, d.height, d.width),
        Err(listing) => Split {
            labels: listing.labels,
            storage: Storage::Paths(listing.paths),
        },
    })
}

/// Standard split-file locations below the data root: (folder, train list, test list, image
/// folder). The image folder is the one the listed relative paths start from.
pub fn standard_layout(
    kind: DatasetKind,
) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    match kind {
        DatasetKind::ImagenetLt => Some((
            "ImageNet_LT",
            "ImageNet_LT_train.txt",
            "ImageNet_LT_test.txt",
            "imagenet",
        )),
        DatasetKind::PlacesLt => Some((
            "Places_LT",
            "Places_LT_train.txt",
            "Places_LT_test.txt",
            "places365",
        )),
        DatasetKind::Inat2018 => Some((
            "iNaturalist18",
            "iNaturalist18_train.txt",
            "iNaturalist18_val.txt",
            "inat2018",
        )),
        DatasetKind::Imagenet => Some(("ImageNet", "ImageNet_train.txt", "ImageNet_val.txt", "imagenet")),
        _ => None,
    }
}

fn split_lists(cfg: &DataConfig) -> Result<Dataset, DataError> {
    let (folder, train_name, test_name, images) = standard_layout(cfg.dataset)
        .ok_or_else(|| DataError::Config(format!("{:?} is not a split-list dataset", cfg.dataset)))?;
    let root: &Path = &cfg.root;
    let pick = |given: &Option<PathBuf>, default: PathBuf| given.clone().unwrap_or(default);
    let image_root = pick(&cfg.image_root, root.join(images));
    let train_list = pick(&cfg.train_list, root.join(folder).join(train_name));
    let test_list = pick(&cfg.test_list, root.join(folder).join(test_name));
    let classes = cfg.num_classes();
    let mut train = split_list::read_split_file(&train_list, &image_root, classes)?;
    let mut test = split_list::read_split_file(&test_list, &image_root, classes)?;
    let original: Vec<usize> = train.iter().map(|e| e.label).collect();
    // Balanced ImageNet keeps its canonical class order, so pretrained heads stay meaningful.
    let map = if cfg.dataset == DatasetKind::Imagenet {
        ClassMap::identity(classes)
    } else {
        ClassMap::by_frequency(&original, classes)
    };
    map.apply(&mut train);
    map.apply(&mut test);
    Ok(Dataset {
        kind: cfg.dataset,
        class_counts: split_list::count_per_class(
            &train.iter().map(|e| e.label).collect::<Vec<_>>(),
            classes,
        ),
        train: files_split(train),
        test: files_split(test),
        num_classes: classes,
        original_labels: map.old_of_new,
    })
}

fn files_split(entries: Vec<SplitEntry>) -> Split {
    Split {
        labels: entries.iter().map(|e| e.label).collect(),
        storage: Storage::Files(entries),
    }
}
