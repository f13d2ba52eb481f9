//! The training engine: optimiser, schedules, losses, checkpoints and the loop.

pub mod checkpoint;
pub mod evaluate;
pub mod loss;
pub mod schedule;
pub mod sgd;
pub mod stage;
pub mod trainer;

pub use trainer::{train, EpochMetrics, RunResult, RunStatus, TrainContext, TrainError};
