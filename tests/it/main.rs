//! The integration tests, as one test binary: one link of the library instead of one per file.

mod common;

mod activations;
mod cli;
mod cluster;
mod data_augment;
mod data_cifar;
mod data_cifar_lt;
mod data_config;
mod data_download;
mod data_image_folder;
mod data_loader;
mod data_split_list;
mod data_synthetic;
mod e2e;
mod eval;
mod manifests;
mod models;
mod progress;
mod render;
mod render_cli;
mod site;
mod step_parity;
mod store;
mod train;
mod trust;
mod verify;
