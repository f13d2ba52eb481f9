//! Checkpoints: one safetensors file holding the model (under the reference key names, so the
//! reference code can load it too), the optimiser's buffers (under the parameter's key, prefixed
//! by the buffer's name), the weight average's tensors (prefixed `ema/`), the number of finished
//! epochs and updates, and the run config it belongs to. Written atomically; a truncated file is
//! a clean error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

use super::ema::Ema;
use super::optim::{Optimizer, Slot, State};
use crate::config::RunConfig;
use crate::nn::import::{export_state_dict, load_state_dict, read_state_dict, ImportError, StateDict};
use crate::nn::Declare;

const FORMAT: &str = "repro-checkpoint-1";
const OPTIMIZER_STEPS: &str = "optimizer_steps";
const EMA_AVERAGED: &str = "ema_averaged";
/// Before a weight average's keys; reference keys never hold a slash.
const EMA_PREFIX: &str = "ema/";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    File(#[from] ImportError),
    #[error("{path} is not a repro checkpoint (no '{key}' in its metadata)")]
    NotACheckpoint { path: PathBuf, key: &'static str },
    #[error("{path} was written for a different run config; remove it to start over")]
    OtherRun { path: PathBuf },
}

/// The canonical file of a run's latest checkpoint inside its output folder.
pub fn latest(dir: &Path) -> PathBuf {
    dir.join("checkpoint.safetensors")
}

/// Saves any network (an image classifier, a language model) by its declared parameters.
pub fn save<B, M>(
    path: &Path,
    model: &M,
    optimizer: &Optimizer<B::InnerBackend>,
    ema: Option<&Ema>,
    run: &RunConfig,
    epochs_done: usize,
) -> Result<(), CheckpointError>
where
    B: AutodiffBackend,
    M: Module<B> + Declare,
{
    let mut state = export_state_dict(model);
    let keys: HashMap<_, _> = model.param_specs().into_iter().map(|s| (s.id, s.key)).collect();
    let optimizer = optimizer.state();
    for ((slot, id), buffer) in &optimizer.buffers {
        if let Some(key) = keys.get(id) {
            state.insert(
                format!("{}{key}", slot.prefix()),
                buffer.to_data().convert::<f32>(),
            );
        }
    }
    let mut metadata = HashMap::new();
    if let Some(ema) = ema {
        for (key, average) in &ema.weights {
            state.insert(format!("{EMA_PREFIX}{key}"), average.clone());
        }
        metadata.insert(EMA_AVERAGED.to_string(), ema.averaged.to_string());
    }
    metadata.extend([
        ("format".to_string(), FORMAT.to_string()),
        ("epochs_done".to_string(), epochs_done.to_string()),
        (OPTIMIZER_STEPS.to_string(), optimizer.steps.to_string()),
        (
            "run_config".to_string(),
            serde_json::to_string(run).unwrap_or_default(),
        ),
    ]);
    write_safetensors(path, &state, metadata).map_err(Into::into)
}

/// Restores model weights, optimiser state and the weight average; returns the model and the
/// number of finished epochs.
pub fn load<B, M>(
    path: &Path,
    model: M,
    optimizer: &mut Optimizer<B::InnerBackend>,
    ema: Option<&mut Ema>,
    run: &RunConfig,
    device: &B::Device,
) -> Result<(M, usize), CheckpointError>
where
    B: AutodiffBackend,
    M: Module<B> + Declare,
{
    let meta = read_safetensors_metadata(path)?;
    let get = |key: &'static str| {
        meta.get(key).ok_or(CheckpointError::NotACheckpoint {
            path: path.into(),
            key,
        })
    };
    if get("format")? != FORMAT {
        return Err(CheckpointError::NotACheckpoint {
            path: path.into(),
            key: "format",
        });
    }
    if get("run_config")? != &serde_json::to_string(run).unwrap_or_default() {
        return Err(CheckpointError::OtherRun { path: path.into() });
    }
    let epochs_done = get("epochs_done")?
        .parse()
        .map_err(|_| CheckpointError::NotACheckpoint {
            path: path.into(),
            key: "epochs_done",
        })?;
    // Checkpoints written before AdamW have no count: SGD does not use it.
    let steps = meta
        .get(OPTIMIZER_STEPS)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (average, state): (StateDict, StateDict) = read_state_dict(path)?
        .into_iter()
        .partition(|(k, _)| k.starts_with(EMA_PREFIX));
    if let Some(ema) = ema {
        ema.weights = average
            .into_iter()
            .map(|(key, data)| (key[EMA_PREFIX.len()..].to_string(), data))
            .collect();
        ema.averaged = meta.get(EMA_AVERAGED).and_then(|n| n.parse().ok()).unwrap_or(0);
    }
    let (buffers, weights): (StateDict, StateDict) =
        state.into_iter().partition(|(k, _)| optimizer_slot(k).is_some());
    let model = load_state_dict(model, weights, path, device)?;
    let ids: HashMap<String, _> = model.param_specs().into_iter().map(|s| (s.key, s.id)).collect();
    let buffers = buffers
        .into_iter()
        .filter_map(|(key, data)| {
            let (slot, param) = optimizer_slot(&key)?;
            let id = *ids.get(param)?;
            let numel = data.num_elements();
            let flat = TensorData::new(data.to_vec::<f32>().ok()?, [numel]);
            Some(((slot, id), Tensor::from_data(flat, device)))
        })
        .collect();
    optimizer.restore(State { buffers, steps });
    Ok((model, epochs_done))
}

/// The optimiser buffer a checkpoint key holds, and its parameter's key; `None` for weights.
pub fn optimizer_slot(key: &str) -> Option<(Slot, &str)> {
    Slot::ALL
        .into_iter()
        .find_map(|slot| Some((slot, key.strip_prefix(slot.prefix())?)))
}

/// Writes tensors (f32) and string metadata as one safetensors file, atomically: a temporary
/// file in the same folder, then a rename, so a crash never leaves a half-written file.
pub fn write_safetensors(
    path: &Path,
    state: &StateDict,
    metadata: std::collections::HashMap<String, String>,
) -> Result<(), ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = state
        .iter()
        .map(|(k, d)| {
            let values = d.to_vec::<f32>().unwrap_or_default();
            (
                k.clone(),
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                d.shape.to_vec(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(k, b, shape)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                .map_err(|e| ImportError::Format {
                    path: path.to_path_buf(),
                    format: "safetensors",
                    reason: e.to_string(),
                })?;
            Ok((k.clone(), view))
        })
        .collect::<Result<Vec<_>, ImportError>>()?;
    let data = safetensors::tensor::serialize(views, Some(metadata)).map_err(|e| ImportError::Format {
        path: path.to_path_buf(),
        format: "safetensors",
        reason: e.to_string(),
    })?;
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, data).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The string metadata of a safetensors file.
pub fn read_safetensors_metadata(
    path: &Path,
) -> Result<std::collections::HashMap<String, String>, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| ImportError::Format {
        path: path.to_path_buf(),
        format: "safetensors",
        reason: e.to_string(),
    })?;
    Ok(meta.metadata().clone().unwrap_or_default())
}
