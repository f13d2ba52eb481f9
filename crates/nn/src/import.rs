//! Loading PyTorch state dicts (`.pth` pickles and `.safetensors`) that use the reference
//! repository's key names (kostas1515/AGLU: `resnet_cifar.py`, `resnet_pytorch.py`, `cbam.py`).
//!
//! Loading is strict: every parameter of our model must be found with the right shape, and
//! every tensor of the state dict must be used; anything else is one error that names the keys.
//! The only tensors skipped are buffers that are not parameters: BatchNorm's
//! `num_batches_tracked` counters, which do not affect the forward pass when a momentum is set
//! (always, here), and the causal masks older Hugging Face GPT-2 checkpoints store
//! (`attn.bias`, `attn.masked_bias`). A GPT-2 checkpoint's `lm_head.weight` is the token
//! embedding again (tied) and is left aside with everything else outside `transformer.`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::params::{Declare, Layout, ParamSpec, Place};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid {format} file: {reason}")]
    Format {
        path: PathBuf,
        format: &'static str,
        reason: String,
    },
    #[error("{path}: tensor '{key}' has unsupported dtype {dtype}")]
    Dtype {
        path: PathBuf,
        key: String,
        dtype: String,
    },
    #[error("{path} does not match the model:\n  {}", problems.join("\n  "))]
    Mismatch { path: PathBuf, problems: Vec<String> },
}

/// A state dict: reference key → tensor (as f32 data with its shape).
pub type StateDict = BTreeMap<String, TensorData>;

/// Buffers that are not parameters, by key suffix.
const IGNORED_SUFFIXES: [&str; 3] = ["num_batches_tracked", ".attn.bias", ".attn.masked_bias"];

/// Reads a state dict, choosing the format by extension (`.safetensors`, else PyTorch pickle).
pub fn read_state_dict(path: &Path) -> Result<StateDict, ImportError> {
    if !path.is_file() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        return Err(ImportError::Io {
            path: path.to_path_buf(),
            source,
        });
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => read_safetensors(path),
        _ => read_pth(path),
    }
}

fn read_safetensors(path: &Path) -> Result<StateDict, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format_error = |reason: String| ImportError::Format {
        path: path.to_path_buf(),
        format: "safetensors",
        reason,
    };
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format_error(e.to_string()))?;
    file.tensors()
        .into_iter()
        .map(|(key, view)| {
            let values = decode_floats(view.dtype(), view.data()).ok_or_else(|| ImportError::Dtype {
                path: path.to_path_buf(),
                key: key.clone(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            Ok((key, TensorData::new(values, view.shape().to_vec())))
        })
        .collect()
}

fn decode_floats(dtype: safetensors::Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    use safetensors::Dtype;
    let values = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")) as f32)
            .collect(),
        // Integer tensors in a state dict are counters such as num_batches_tracked.
        Dtype::I64 => bytes
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("chunks of 8")) as f32)
            .collect(),
        _ => return None,
    };
    Some(values)
}

fn read_pth(path: &Path) -> Result<StateDict, ImportError> {
    let format_error = |reason: String| ImportError::Format {
        path: path.to_path_buf(),
        format: "PyTorch",
        reason,
    };
    // The pickle reader can panic on malformed input; a bad file must still be a clean error.
    let reader = std::panic::catch_unwind(|| burn_store::pytorch::PytorchReader::new(path))
        .map_err(|_| format_error("the file is truncated or corrupt".into()))?
        .map_err(|e| format_error(e.to_string()))?;
    reader
        .into_tensors()
        .into_iter()
        .map(|(key, snapshot)| {
            let data = snapshot
                .to_data()
                .map_err(|e| format_error(format!("tensor '{key}': {e:?}")))?;
            let data = data.convert::<f32>();
            Ok((key, data))
        })
        .collect()
}

/// Loads `state` into `model`, strictly (see the module docs).
pub fn load_state_dict<B: Backend, M: Module<B> + Declare>(
    model: M,
    state: StateDict,
    path: &Path,
    device: &B::Device,
) -> Result<M, ImportError> {
    load_state_dict_keeping(model, state, path, device, KeepHead::No)
}

/// Whether a load keeps the model's own classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepHead {
    No,
    /// The head's parameters keep their current values and the state's tensors under the
    /// head's key prefix are ignored — how a stage takes a parent's backbone with a fresh
    /// classifier.
    Yes,
}

/// Like [`load_state_dict`], optionally keeping the model's classifier.
pub fn load_state_dict_keeping<B: Backend, M: Module<B> + Declare>(
    model: M,
    state: StateDict,
    path: &Path,
    device: &B::Device,
    keep: KeepHead,
) -> Result<M, ImportError> {
    let specs = model.param_specs();
    let expected: BTreeSet<String> = specs.iter().map(|s| s.key.clone()).collect();
    let head_prefixes = match keep {
        KeepHead::Yes => head_prefixes(&specs),
        KeepHead::No => Vec::new(),
    };
    let mut loader = Loader {
        specs: specs.into_iter().map(|s| (s.id, s)).collect(),
        state: strip_wrapper_prefix(state, &expected),
        used: BTreeSet::new(),
        problems: Vec::new(),
        device: device.clone(),
        head_prefixes,
    };
    let model = model.map(&mut loader);
    let mut problems = loader.problems.clone();
    problems.extend(
        loader
            .state
            .keys()
            .filter(|k| {
                !loader.used.contains(*k)
                    && !IGNORED_SUFFIXES.iter().any(|s| k.ends_with(s))
                    && !loader.kept(k)
            })
            .map(|k| format!("unexpected tensor '{k}' (the model has no such parameter)")),
    );
    if problems.is_empty() {
        Ok(model)
    } else {
        Err(ImportError::Mismatch {
            path: path.to_path_buf(),
            problems,
        })
    }
}

/// The module prefixes of the classifier's keys (`linear.` in the CIFAR family, `fc.`
/// otherwise): a parent's head tensors may have another shape and are skipped whole.
fn head_prefixes(specs: &[ParamSpec]) -> Vec<String> {
    let mut prefixes: Vec<String> = specs
        .iter()
        .filter(|s| s.place == Place::Head)
        .map(|s| format!("{}.", s.key.split('.').next().unwrap_or_default()))
        .collect();
    prefixes.dedup();
    prefixes
}

/// Training scripts save `{"model": state_dict, ...}` and DDP prefixes `module.`, and Hugging
/// Face's `GPT2LMHeadModel` keeps GPT-2 under `transformer.`; pick the prefix under which the
/// model's keys are found and keep only the tensors beneath it.
fn strip_wrapper_prefix(state: StateDict, expected: &BTreeSet<String>) -> StateDict {
    let prefixes = [
        "",
        "model.",
        "state_dict.",
        "module.",
        "model.module.",
        "state_dict.module.",
        "transformer.",
    ];
    let hits = |prefix: &str| {
        expected
            .iter()
            .filter(|k| state.contains_key(&format!("{prefix}{k}")))
            .count()
    };
    let best = prefixes
        .into_iter()
        .max_by_key(|p| (hits(p), usize::from(p.is_empty())))
        .unwrap_or("");
    if best.is_empty() {
        return state;
    }
    state
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(best)?.to_string(), v)))
        .collect()
}

struct Loader<B: Backend> {
    specs: HashMap<ParamId, ParamSpec>,
    state: StateDict,
    used: BTreeSet<String>,
    problems: Vec<String>,
    device: B::Device,
    head_prefixes: Vec<String>,
}

impl<B: Backend> Loader<B> {
    fn kept(&self, key: &str) -> bool {
        self.head_prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    fn tensor_for<const D: usize>(&mut self, id: ParamId, ours: [usize; D]) -> Option<Tensor<B, D>> {
        let Some(spec) = self.specs.get(&id) else {
            self.problems.push(format!(
                "a parameter of shape {ours:?} has no declared checkpoint key"
            ));
            return None;
        };
        let (key, layout) = (spec.key.clone(), spec.layout);
        if self.kept(&key) {
            return None;
        }
        let Some(data) = self.state.get(&key) else {
            self.problems
                .push(format!("missing tensor '{key}' (shape {ours:?})"));
            return None;
        };
        self.used.insert(key.clone());
        let theirs = data.shape.to_vec();
        let numel: usize = ours.iter().product();
        let tensor = match layout {
            Layout::Transposed if D == 2 && theirs == [ours[1], ours[0]] => {
                Tensor::<B, 2>::from_data(data.clone(), &self.device)
                    .transpose()
                    .reshape(ours)
            }
            Layout::Flattened if theirs.iter().product::<usize>() == numel => {
                Tensor::<B, 1>::from_data(TensorData::new(data.to_vec::<f32>().ok()?, [numel]), &self.device)
                    .reshape(ours)
            }
            Layout::Same if theirs == ours => Tensor::from_data(data.clone(), &self.device),
            _ => {
                let expected = match layout {
                    Layout::Transposed if D == 2 => format!("{:?}", [ours[1], ours[0]]),
                    _ => format!("{ours:?}"),
                };
                self.problems.push(format!(
                    "tensor '{key}' has shape {theirs:?}, the model expects {expected}"
                ));
                return None;
            }
        };
        Some(tensor)
    }
}

impl<B: Backend> ModuleMapper<B> for Loader<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, old, mapper) = param.consume();
        let value = match self.tensor_for(id, old.dims()) {
            // Loading must not change which parameters train.
            Some(tensor) => tensor.set_require_grad(old.is_require_grad()),
            None => old,
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

/// The reference keys of a model, sorted (for `repro inspect` and tests).
pub fn reference_keys<M: Declare>(model: &M) -> Vec<String> {
    let keys: BTreeSet<String> = model.param_specs().into_iter().map(|s| s.key).collect();
    keys.into_iter().collect()
}

/// Our model's tensors under the reference key names, as f32: what a checkpoint stores, and
/// what the reference code can load.
pub fn export_state_dict<B: Backend, M: Module<B> + Declare>(model: &M) -> StateDict {
    let specs: HashMap<ParamId, ParamSpec> = model.param_specs().into_iter().map(|s| (s.id, s)).collect();
    let mut exporter = Exporter {
        specs,
        state: StateDict::new(),
    };
    model.visit(&mut exporter);
    exporter.state
}

struct Exporter {
    specs: HashMap<ParamId, ParamSpec>,
    state: StateDict,
}

impl<B: Backend> ModuleVisitor<B> for Exporter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        // Every parameter is declared (tested for every architecture).
        let Some(spec) = self.specs.get(&param.id) else {
            return;
        };
        let value = param.val();
        let value = match spec.layout {
            Layout::Transposed if D == 2 => {
                let [a, b] = [value.dims()[0], value.dims()[1]];
                value.reshape([a, b]).transpose().into_data()
            }
            _ => value.into_data(),
        };
        self.state.insert(spec.key.clone(), value.convert::<f32>());
    }
}
