//! The data half: datasets (synthetic, CIFAR, CIFAR-LT, split-list image sets, image
//! folders), augmentation, sampling and batching. Images are plain buffers (`Vec<u8>` HWC when
//! decoded, `Vec<f32>` NCHW in a batch); nothing here depends on the tensor library.

pub mod augment;
pub mod cifar;
pub mod cifar_lt;
pub mod dataset;
pub mod download;
pub mod error;
pub mod groups;
pub mod image_folder;
pub mod loader;
pub mod mix;
pub mod numpy_rng;
pub mod pickle;
pub mod sampler;
pub mod seed;
pub mod split_list;
pub mod synthetic;
pub mod text;

pub use dataset::{load_dataset, train_size, Dataset, Split, SplitKind, Storage};
pub use error::DataError;
pub use groups::{Group, GroupThresholds};
pub use loader::{Batch, BatchIter, Loader};
