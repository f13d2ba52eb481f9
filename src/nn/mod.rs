//! The neural-network half: activations, attention, backbones, classifiers and checkpoint
//! import. Nothing here knows about manifests or the results store.

pub mod activation;
mod adaptive_cpu;
pub mod adaptive_op;
pub mod attention;
mod batch_norm_cpu;
pub mod batch_norm_op;
pub mod classifier;
mod conv_cpu;
pub mod conv_op;
pub mod fused;
pub mod import;
pub mod init;
pub mod model;
pub mod norm;
mod primitive;
pub mod resnet_cifar;
pub mod resnet_imagenet;
pub mod rng;

pub use fused::FusedBackend;
pub use model::{Family, LearnedParam, Model};
