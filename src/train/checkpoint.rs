//! Checkpoints: one safetensors file holding the model (under the reference key names, so the
//! reference code can load it too), the momentum buffers, the number of finished epochs and the
//! run config it belongs to. Written atomically; a truncated file is a clean error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

use super::sgd::Sgd;
use crate::config::RunConfig;
use crate::nn::import::{
    export_state_dict, load_state_dict, param_keys, read_safetensors_metadata, read_state_dict,
    write_safetensors, ImportError, StateDict,
};
use crate::nn::{FusedBackend, Model};

/// Prefix of the momentum buffers among a checkpoint's tensors.
pub const MOMENTUM: &str = "momentum.";
const FORMAT: &str = "repro-checkpoint-1";

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

pub fn save<B>(
    path: &Path,
    model: &Model<B>,
    sgd: &Sgd<B::InnerBackend>,
    run: &RunConfig,
    epochs_done: usize,
) -> Result<(), CheckpointError>
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    let mut state = export_state_dict(model, &run.model);
    let keys: HashMap<_, _> = param_keys(model, &run.model).into_iter().collect();
    for (id, buffer) in sgd.buffers() {
        if let Some(key) = keys.get(id) {
            state.insert(format!("{MOMENTUM}{key}"), buffer.to_data().convert::<f32>());
        }
    }
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("epochs_done".to_string(), epochs_done.to_string()),
        (
            "run_config".to_string(),
            serde_json::to_string(run).unwrap_or_default(),
        ),
    ]);
    write_safetensors(path, &state, metadata).map_err(Into::into)
}

/// Restores model weights and momentum; returns the model and the number of finished epochs.
pub fn load<B>(
    path: &Path,
    model: Model<B>,
    sgd: &mut Sgd<B::InnerBackend>,
    run: &RunConfig,
    device: &B::Device,
) -> Result<(Model<B>, usize), CheckpointError>
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
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
    let (momentum, weights): (StateDict, StateDict) = read_state_dict(path)?
        .into_iter()
        .partition(|(k, _)| k.starts_with(MOMENTUM));
    let model = load_state_dict(model, &run.model, weights, path, device)?;
    let ids: HashMap<String, _> = param_keys(&model, &run.model)
        .into_iter()
        .map(|(id, key)| (key, id))
        .collect();
    let buffers = momentum
        .into_iter()
        .filter_map(|(key, data)| {
            let id = *ids.get(key.strip_prefix(MOMENTUM)?)?;
            let numel = data.num_elements();
            let flat = TensorData::new(data.to_vec::<f32>().ok()?, [numel]);
            Some((id, Tensor::from_data(flat, device)))
        })
        .collect();
    sgd.set_buffers(buffers);
    Ok((model, epochs_done))
}
