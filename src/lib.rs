//! repro — reproduces the experiments of *Adaptive Parametric Activation* (APA and AGLU).
//!
//! Data flows one way: config → plan → exec → store → render, with the ML half (nn, data,
//! train, eval) beneath the trainer, and `result` — the one schema of a run's record — beneath
//! everything. docs/architecture.md is the map.

pub mod backend;
pub mod config;
pub mod data;
pub mod eval;
pub mod exec;
pub mod exit;
pub use repro_nn as nn;
pub mod plan;
pub mod render;
pub mod result;
pub mod store;
pub mod train;
pub mod verify;
