//! Loading PyTorch state dicts (`.pth` pickles and `.safetensors`) that use the reference
//! repository's key names (kostas1515/AGLU: `resnet_cifar.py`, `resnet_pytorch.py`, `cbam.py`).
//!
//! Loading is strict: every parameter of our model must be found with the right shape, and
//! every tensor of the state dict must be used; anything else is one error that names the keys.
//! The only tensors skipped are BatchNorm's `num_batches_tracked` counters, which do not affect
//! the forward pass when a momentum is set (always, here).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::fused::FusedBackend;
use super::model::{Family, Model};
use crate::config::model::{Attention, ModelConfig};

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

const IGNORED_SUFFIX: &str = "num_batches_tracked";

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
pub fn load_state_dict<B: FusedBackend>(
    model: Model<B>,
    config: &ModelConfig,
    state: StateDict,
    path: &Path,
    device: &B::Device,
) -> Result<Model<B>, ImportError> {
    load_state_dict_keeping(model, config, state, path, device, None)
}

/// Like [`load_state_dict`], except that parameters whose reference key starts with `keep`
/// keep their current values and the state's tensors under `keep` are ignored — how a stage
/// takes a parent's backbone with a fresh classifier.
pub fn load_state_dict_keeping<B: FusedBackend>(
    model: Model<B>,
    config: &ModelConfig,
    state: StateDict,
    path: &Path,
    device: &B::Device,
    keep: Option<&str>,
) -> Result<Model<B>, ImportError> {
    let expected: BTreeSet<String> = param_keys(&model, config)
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    let state = strip_wrapper_prefix(state, &expected);
    let mut loader = Loader {
        naming: Naming::new(config),
        path: Vec::new(),
        state,
        used: BTreeSet::new(),
        problems: Vec::new(),
        device: device.clone(),
        keep: keep.map(str::to_string),
    };
    let model = model.map(&mut loader);
    let kept = |k: &str| loader.keep.as_deref().is_some_and(|p| k.starts_with(p));
    let mut problems = loader.problems.clone();
    problems.extend(
        loader
            .state
            .keys()
            .filter(|k| !loader.used.contains(*k) && !k.ends_with(IGNORED_SUFFIX) && !kept(k))
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

/// The key prefix of the classification head (`linear.` in the CIFAR family, `fc.` otherwise).
pub fn classifier_prefix(config: &ModelConfig) -> &'static str {
    match config.arch.family() {
        Family::Cifar => "linear.",
        Family::ImageNet => "fc.",
    }
}

/// Training scripts save `{"model": state_dict, ...}` and DDP prefixes `module.`; pick the
/// prefix under which the model's keys are found and keep only the tensors beneath it.
fn strip_wrapper_prefix(state: StateDict, expected: &BTreeSet<String>) -> StateDict {
    let prefixes = [
        "",
        "model.",
        "state_dict.",
        "module.",
        "model.module.",
        "state_dict.module.",
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

/// Translates our module paths into the reference repository's key names.
#[derive(Debug, Clone, Copy)]
struct Naming {
    family: Family,
    attention: Attention,
}

impl Naming {
    fn new(config: &ModelConfig) -> Self {
        Self {
            family: config.arch.family(),
            attention: config.attention,
        }
    }

    /// `segments` are (field name, type of the struct that holds the field).
    fn torch_key(&self, segments: &[(String, String)]) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut in_stages = false;
        for (name, container) in segments {
            if container.starts_with("Enum:") {
                continue;
            }
            if std::mem::take(&mut in_stages) {
                let stage: usize = name.parse().unwrap_or(0);
                parts.push(format!("layer{}", stage + 1));
                continue;
            }
            let type_name = container.strip_prefix("Struct:").unwrap_or(container);
            match self.rename(type_name, name) {
                Rename::Skip => {}
                Rename::To(s) => parts.push(s.to_string()),
                Rename::Keep => parts.push(name.clone()),
                Rename::Stages => in_stages = true,
            }
        }
        parts.join(".")
    }

    fn rename(&self, container: &str, name: &str) -> Rename {
        let cifar = self.family == Family::Cifar;
        match (container, name) {
            ("CifarResNet", "act") => Rename::To("unirect"),
            ("ImageNetResNet", "act") => Rename::To("relu"),
            ("CifarResNet", "classifier") => Rename::To("linear"),
            ("ImageNetResNet", "classifier") => Rename::To("fc"),
            ("ImageNetResNet", "stages") => Rename::Stages,
            ("BasicBlock" | "Bottleneck", "act1") => Rename::To("unirect1"),
            ("BasicBlock" | "Bottleneck", "act2") => Rename::To("unirect2"),
            ("Bottleneck", "act3") => Rename::To("unirect3"),
            ("BasicBlock" | "Bottleneck", "attention") => Rename::To(match (self.attention, cifar) {
                (Attention::Se, _) => "se",
                (_, true) => "cb",
                (_, false) => "cbam",
            }),
            ("Downsample", "conv") => Rename::To("0"),
            ("Downsample", "bn") => Rename::To("1"),
            ("Attention", "se") | ("Act", "adaptive" | "prelu") | ("GateAct", "adaptive") => Rename::Skip,
            ("Head", "linear" | "cosine") => Rename::Skip,
            ("Attention", "channel") => Rename::To("ChannelGate"),
            ("Attention", "spatial") => Rename::To("SpatialGate"),
            ("SqueezeExcite", "fc1") => Rename::To("excitation.0"),
            ("SqueezeExcite", "fc2") => Rename::To("excitation.2"),
            ("SqueezeExcite", "gate") => Rename::To(if cifar { "unact" } else { "uniact" }),
            ("ChannelGate", "fc1") => Rename::To("mlp.1"),
            ("ChannelGate", "fc2") => Rename::To("mlp.3"),
            ("ChannelGate" | "SpatialGate", "gate") => Rename::To("uniact"),
            ("SpatialGate", "conv") => Rename::To("spatial.conv"),
            ("SpatialGate", "bn") => Rename::To("spatial.bn"),
            ("Adaptive", "kappa") => Rename::To("kappa_param"),
            ("Adaptive", "lambda") => Rename::To("lambda_param"),
            ("LayerNorm", "gamma") | ("PRelu", "alpha") => Rename::To("weight"),
            ("LayerNorm", "beta") => Rename::To("bias"),
            _ => Rename::Keep,
        }
    }
}

enum Rename {
    Keep,
    Skip,
    To(&'static str),
    /// `stages.<s>` becomes `layer<s+1>`.
    Stages,
}

/// How a stored tensor relates to our parameter of the same key.
fn layout_of(segments: &[(String, String)]) -> Layout {
    match segments.last().map(|(n, c)| (n.as_str(), c.as_str())) {
        Some(("weight", "Struct:Linear")) => Layout::Transposed,
        Some(("kappa" | "lambda", "Struct:Adaptive")) => Layout::Flattened,
        _ => Layout::Same,
    }
}

enum Layout {
    Same,
    /// Burn's Linear stores `[in, out]`, PyTorch `[out, in]`.
    Transposed,
    /// Per-channel κ/λ are stored `[1, C, 1, 1]` by the reference and `[C]` here.
    Flattened,
}

struct Loader<B: Backend> {
    naming: Naming,
    path: Vec<(String, String)>,
    state: StateDict,
    used: BTreeSet<String>,
    problems: Vec<String>,
    device: B::Device,
    keep: Option<String>,
}

impl<B: Backend> Loader<B> {
    fn tensor_for<const D: usize>(&mut self, ours: [usize; D]) -> Option<Tensor<B, D>> {
        let key = self.naming.torch_key(&self.path);
        if self.keep.as_deref().is_some_and(|p| key.starts_with(p)) {
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
        let tensor = match layout_of(&self.path) {
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
                self.problems.push(format!(
                    "tensor '{key}' has shape {theirs:?}, the model expects {}",
                    expected_shape(&self.path, ours)
                ));
                return None;
            }
        };
        Some(tensor)
    }
}

fn expected_shape<const D: usize>(segments: &[(String, String)], ours: [usize; D]) -> String {
    match layout_of(segments) {
        Layout::Transposed if D == 2 => format!("{:?}", [ours[1], ours[0]]),
        _ => format!("{ours:?}"),
    }
}

impl<B: Backend> ModuleMapper<B> for Loader<B> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, old, mapper) = param.consume();
        let value = match self.tensor_for(old.dims()) {
            // Loading must not change which parameters train.
            Some(tensor) => tensor.set_require_grad(old.is_require_grad()),
            None => old,
        };
        Param::from_mapped_value(id, value, mapper)
    }
}

/// The reference keys of a model, sorted (for `repro inspect` and tests).
pub fn reference_keys<B: FusedBackend>(model: &Model<B>, config: &ModelConfig) -> Vec<String> {
    let keys: BTreeSet<String> = param_keys(model, config)
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    keys.into_iter().collect()
}

/// Our model's tensors under the reference key names, as f32: what a checkpoint stores, and
/// what the reference code can load.
pub fn export_state_dict<B: FusedBackend>(model: &Model<B>, config: &ModelConfig) -> StateDict {
    let mut exporter = Exporter {
        with_values: true,
        naming: Naming::new(config),
        path: Vec::new(),
        state: StateDict::new(),
        ids: Vec::new(),
    };
    model.visit(&mut exporter);
    exporter.state
}

/// Reference key of every parameter, by parameter id (to name optimiser state in checkpoints).
pub fn param_keys<B: FusedBackend>(
    model: &Model<B>,
    config: &ModelConfig,
) -> Vec<(burn::module::ParamId, String)> {
    let mut exporter = Exporter {
        with_values: false,
        naming: Naming::new(config),
        path: Vec::new(),
        state: StateDict::new(),
        ids: Vec::new(),
    };
    model.visit(&mut exporter);
    exporter.ids
}

struct Exporter {
    /// Whether to copy the tensors out (not needed when only the names are wanted).
    with_values: bool,
    naming: Naming,
    path: Vec<(String, String)>,
    state: StateDict,
    ids: Vec<(burn::module::ParamId, String)>,
}

impl<B: Backend> burn::module::ModuleVisitor<B> for Exporter {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.push((name.to_string(), container_type.to_string()));
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let key = self.naming.torch_key(&self.path);
        self.ids.push((param.id, key.clone()));
        if !self.with_values {
            return;
        }
        let value = param.val();
        let value = match layout_of(&self.path) {
            Layout::Transposed if D == 2 => {
                let [a, b] = [value.dims()[0], value.dims()[1]];
                value.reshape([a, b]).transpose().into_data()
            }
            _ => value.into_data(),
        };
        self.state.insert(key, value.convert::<f32>());
    }
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
