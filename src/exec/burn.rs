//! The real trainer behind the executor's [`Trainer`] boundary: runs [`crate::train::train`]
//! on the run's device and translates its result for the store.

use std::path::Path;

use super::trainer::{RunContext, RunSpec, TrainError, Trainer};
use crate::backend::DeviceSpec;
use crate::result::{Artifact, ClassResult, LearnedParam, RunOutcome, RunResult, CHECKPOINT};
use crate::train::checkpoint;
use crate::train::{self, EpochMetrics, RunStatus, TrainContext};

/// Trains on Burn: `flex` on `cpu`, CUDA on `cuda:N` (feature `cuda`).
#[derive(Debug, Default, Clone, Copy)]
pub struct BurnTrainer;

impl Trainer for BurnTrainer {
    fn train(&self, run: &RunSpec, ctx: &RunContext) -> Result<RunResult, TrainError> {
        let parent_checkpoint = match ctx.parents.as_slice() {
            [] => None,
            [parent] => parent.checkpoint.clone(),
            _ => {
                return Err(TrainError::Failed(format!(
                    "stage '{}' needs several stages; a run starts from one parent's checkpoint",
                    run.stage
                )))
            }
        };
        let spec: DeviceSpec = ctx
            .device
            .parse()
            .map_err(|e| TrainError::Failed(format!("{e}")))?;
        let spec = spec
            .check_available()
            .map_err(|e| TrainError::Failed(format!("{e}")))?;
        let record = |m: &EpochMetrics| {
            let mut values = vec![
                ("loss".to_string(), m.loss),
                ("lr".to_string(), m.lr),
                ("images_per_s".to_string(), m.images_per_s),
            ];
            if let Some(top1) = m.test_top1 {
                values.push(("test_top1".to_string(), top1));
            }
            // A sink failure surfaces when the run is finished; training goes on meanwhile.
            let _ = ctx.metrics.epoch(m.epoch as u32, "train", &values);
        };
        let train_ctx = TrainContext {
            out_dir: Some(ctx.out_dir.clone()),
            resume: true,
            progress: false,
            cancel: Some(ctx.cancel.clone()),
            on_epoch: Some(&record),
            parent_checkpoint,
        };
        let result = run_on(spec, &run.config, &train_ctx).map_err(|e| match e {
            train::TrainError::Interrupted { .. } => TrainError::Cancelled,
            other => TrainError::Failed(format!("{:#}", anyhow::Error::from(other))),
        })?;
        Ok(to_store(result, &ctx.out_dir))
    }
}

fn run_on(
    spec: DeviceSpec,
    config: &crate::config::RunConfig,
    ctx: &TrainContext<'_>,
) -> Result<train::RunResult, train::TrainError> {
    match spec {
        DeviceSpec::Cpu => train::train::<crate::backend::CpuTrain>(config, ctx, &Default::default()),
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(index) => {
            let device = burn::backend::cuda::CudaDevice::new(index);
            train::train::<crate::backend::GpuTrain>(config, ctx, &device)
        }
        #[cfg(not(feature = "cuda"))]
        DeviceSpec::Cuda(_) => unreachable!("check_available rejects CUDA without the feature"),
    }
}

/// Final metrics under split `test`, per-class results, learned κ/λ (per-channel values named
/// `kappa.<c>`), the checkpoint, and the full result as JSON (reliability bins, epochs).
fn to_store(result: train::RunResult, out_dir: &Path) -> RunResult {
    let outcome = match &result.status {
        RunStatus::Done => RunOutcome::Done,
        RunStatus::Diverged { reason, .. } => RunOutcome::Diverged {
            reason: reason.clone(),
        },
    };
    let mut stored = RunResult {
        outcome,
        ..RunResult::done()
    };
    if let Some(test) = &result.test {
        let named = [
            ("top1", Some(test.top1)),
            ("top5", Some(test.top5)),
            ("many", test.many),
            ("medium", test.medium),
            ("few", test.few),
            ("nll", Some(test.nll)),
            ("ece", Some(test.ece)),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                stored = stored.metric("test", name, value);
            }
        }
        if let Some(nc1) = result.analyses.nc1 {
            stored = stored.metric("test", "nc1", nc1);
        }
        stored.class_results = test
            .per_class
            .iter()
            .map(|c| ClassResult {
                class: c.class as u32,
                n_train: c.n_train as u64,
                n_test: c.n_test as u64,
                correct: c.correct as u64,
            })
            .collect();
    }
    let channels = |module: &str, name: &str| {
        result
            .learned
            .iter()
            .filter(|p| p.module == module && p.name == name)
            .count()
    };
    stored.learned_params = result
        .learned
        .iter()
        .map(|p| {
            let name = if channels(&p.module, &p.name) > 1 {
                format!("{}.{}", p.name, p.index)
            } else {
                p.name.clone()
            };
            LearnedParam {
                module: p.module.clone(),
                name,
                value: f64::from(p.value),
            }
        })
        .collect();
    let checkpoint = checkpoint::latest(out_dir);
    if checkpoint.is_file() {
        stored.artifacts.push(Artifact {
            kind: CHECKPOINT.into(),
            path: checkpoint,
        });
    }
    let summary = out_dir.join("result.json");
    if serde_json::to_vec_pretty(&result).is_ok_and(|json| std::fs::write(&summary, json).is_ok()) {
        stored.artifacts.push(Artifact {
            kind: "result".into(),
            path: summary,
        });
    }
    stored
}
