//! The training engine: optimiser, schedules, losses, checkpoints and the loop.

pub mod checkpoint;
pub mod loss;
pub mod schedule;
pub mod sgd;
pub mod trainer;

pub use trainer::{train, EpochMetrics, RunResult, RunStatus, TrainContext, TrainError};
