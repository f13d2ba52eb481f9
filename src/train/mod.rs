//! The training engine: optimiser, schedules, losses, checkpoints and the loop.

pub mod checkpoint;
mod ema;
pub mod evaluate;
pub mod fit;
mod lm;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod stage;

pub use fit::{fit, fit_on, Observer, Position, TrainContext, TrainError};
