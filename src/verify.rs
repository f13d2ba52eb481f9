//! `repro verify FIXTURE.json`: builds the fixture's model, loads its reference weights, runs an
//! eval-mode forward on its input and compares with the reference logits.

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use serde::Deserialize;

use crate::nn::import::{load_state_dict, read_state_dict, ImportError};
use crate::nn::ModelConfig;
use crate::nn::{FusedBackend, Gpt2, Model, Task};

#[derive(Debug, Deserialize)]
struct Fixture {
    #[serde(default)]
    name: Option<String>,
    model: ModelConfig,
    #[serde(default)]
    weights: Option<PathBuf>,
    #[serde(default)]
    weights_pth: Option<PathBuf>,
    tolerance: Tolerance,
    /// `[N, 3, H, W]` images for a classifier, `[N, T]` token ids for a language model.
    input_shape: Vec<usize>,
    input: Vec<f32>,
    /// `[N, classes]` or `[N, T, vocab]`.
    logits_shape: Vec<usize>,
    logits: Vec<f32>,
}

#[derive(Debug, Deserialize)]
struct Tolerance {
    max_abs: f64,
}

/// Which of the fixture's weight files to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightsChoice {
    /// `weights` (safetensors) when named, else `weights_pth` (docs/architecture.md, fixtures).
    #[default]
    Preferred,
    Safetensors,
    Pth,
}

/// Problems with the fixture itself: the check could not be run (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read fixture {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("fixture {path} is not valid")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("fixture {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Import(#[from] ImportError),
}

impl crate::exit::ExitStatus for VerifyError {
    fn exit_code(&self) -> i32 {
        crate::exit::INPUT
    }
}

/// What a completed check found.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub name: String,
    pub weights: PathBuf,
    pub max_abs_diff: f64,
    /// The fixture's `tolerance.max_abs`.
    pub tolerance: f64,
    /// Units in the last place (f32) of the largest reference logit added to the tolerance.
    pub extra_ulps: u32,
    /// The largest |reference logit|, which sets the scale of float32 rounding differences.
    pub max_abs_logit: f64,
}

impl VerifyReport {
    /// The tolerance applied: the fixture's, widened by `extra_ulps` f32 ulps of the largest
    /// reference logit. Two float32 implementations that sum in different orders differ by a
    /// few ulps of the output's magnitude; for logits in the hundreds that exceeds a small
    /// absolute tolerance even when both are equally close to the exact (f64) value.
    pub fn effective_tolerance(&self) -> f64 {
        self.tolerance + f64::from(self.extra_ulps) * f32_ulp(self.max_abs_logit)
    }

    pub fn passed(&self) -> bool {
        self.max_abs_diff <= self.effective_tolerance()
    }
}

/// The spacing of f32 values at magnitude `x`.
fn f32_ulp(x: f64) -> f64 {
    let x = x.abs() as f32;
    if x == 0.0 {
        return f64::from(f32::MIN_POSITIVE);
    }
    f64::from(f32::from_bits(x.to_bits() + 1) - x)
}

pub fn verify<B: FusedBackend>(
    fixture_path: &Path,
    choice: WeightsChoice,
    extra_ulps: u32,
    device: &B::Device,
) -> Result<VerifyReport, VerifyError> {
    let fixture = read_fixture(fixture_path)?;
    let invalid = |reason: String| VerifyError::Invalid {
        path: fixture_path.to_path_buf(),
        reason,
    };
    check_len("input", &fixture.input, &fixture.input_shape).map_err(invalid)?;
    check_len("logits", &fixture.logits, &fixture.logits_shape).map_err(invalid)?;
    // An empty batch compares nothing and would pass with max |Δ| = 0.
    if fixture.input.is_empty() || fixture.logits.is_empty() {
        return Err(invalid(
            "`input` and `logits` hold no values (an empty batch checks nothing)".into(),
        ));
    }
    let max_abs = fixture.tolerance.max_abs;
    if !(max_abs.is_finite() && max_abs >= 0.0) {
        return Err(invalid(format!(
            "`tolerance.max_abs` is {max_abs}; it must be a number ≥ 0"
        )));
    }
    check_model(&fixture).map_err(invalid)?;
    let weights = weights_path(fixture_path, &fixture, choice).map_err(invalid)?;

    let state = read_state_dict(&weights)?;
    let input = TensorData::new(fixture.input.clone(), fixture.input_shape.clone());
    let (dims, logits) = match fixture.model.task() {
        Task::ImageClassification => {
            let model = Model::<B>::new(&fixture.model, device).map_err(|e| invalid(e.to_string()))?;
            let model = load_state_dict(model, state, &weights, device)?;
            let logits = model.forward(Tensor::from_data(input, device));
            (logits.dims().to_vec(), logits.into_data())
        }
        Task::LanguageModelling => {
            let model = Gpt2::<B>::new(&fixture.model, device).map_err(|e| invalid(e.to_string()))?;
            let model = load_state_dict(model, state, &weights, device)?;
            let tokens = Tensor::<B, 2, Int>::from_data(input.convert::<i64>(), device);
            let logits = model.forward(tokens);
            (logits.dims().to_vec(), logits.into_data())
        }
    };
    if dims != fixture.logits_shape {
        let reason = format!(
            "the model gives logits {dims:?}, the fixture has {:?}",
            fixture.logits_shape
        );
        return Err(invalid(reason));
    }
    let ours = logits.convert::<f32>().to_vec::<f32>().unwrap_or_default();
    let max_abs_diff = ours
        .iter()
        .zip(&fixture.logits)
        .map(|(a, b)| f64::from((a - b).abs()))
        .fold(0.0, f64::max);
    let max_abs_logit = fixture
        .logits
        .iter()
        .map(|v| f64::from(v.abs()))
        .fold(0.0, f64::max);
    let name = fixture.name.unwrap_or_else(|| fixture_path.display().to_string());
    Ok(VerifyReport {
        name,
        weights,
        max_abs_diff,
        tolerance: fixture.tolerance.max_abs,
        extra_ulps,
        max_abs_logit,
    })
}

fn read_fixture(path: &Path) -> Result<Fixture, VerifyError> {
    let text = std::fs::read_to_string(path).map_err(|source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| VerifyError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The model the fixture describes can be built and takes its input.
fn check_model(fixture: &Fixture) -> Result<(), String> {
    let model = &fixture.model;
    model
        .check()
        .map_err(|(key, reason)| format!("'{key}' {reason}"))?;
    if model.task() == Task::LanguageModelling {
        return check_tokens(fixture);
    }
    let &[_, channels, height, width] = fixture.input_shape.as_slice() else {
        return Err(format!(
            "'input_shape' {:?} must be [N, 3, H, W]",
            fixture.input_shape
        ));
    };
    if channels != 3 {
        return Err(format!(
            "'input_shape' {:?} must be [N, 3, H, W]",
            fixture.input_shape
        ));
    }
    match model.input_side() {
        Some(side) if (height, width) != (side, side) => Err(format!(
            "'input_shape' {:?} does not fit 'model.image_size' {side} (the position embedding's)",
            fixture.input_shape
        )),
        _ => Ok(()),
    }
}

/// A language model's input: `[N, T]` whole token ids inside the vocabulary, T within the context.
fn check_tokens(fixture: &Fixture) -> Result<(), String> {
    let shape = &fixture.input_shape;
    let context = fixture.model.context().unwrap_or_default();
    match shape.as_slice() {
        &[_, t] if t <= context => {}
        _ => {
            return Err(format!(
                "'input_shape' {shape:?} must be [N, T] with T at most the context of {context}"
            ))
        }
    }
    let vocab = fixture.model.vocab() as f32;
    match fixture
        .input
        .iter()
        .position(|&t| t.fract() != 0.0 || !(0.0..vocab).contains(&t))
    {
        Some(i) => Err(format!(
            "'input' value {} at {i} is not a token id below model.vocab_size {vocab}",
            fixture.input[i]
        )),
        None => Ok(()),
    }
}

fn check_len(what: &str, values: &[f32], shape: &[usize]) -> Result<(), String> {
    let expected: usize = shape.iter().product();
    if values.len() == expected {
        Ok(())
    } else {
        Err(format!(
            "'{what}' has {} values but its shape {shape:?} needs {expected}",
            values.len()
        ))
    }
}

fn weights_path(fixture_path: &Path, fixture: &Fixture, choice: WeightsChoice) -> Result<PathBuf, String> {
    let named = match choice {
        WeightsChoice::Preferred => fixture.weights.as_ref().or(fixture.weights_pth.as_ref()),
        WeightsChoice::Safetensors => fixture.weights.as_ref(),
        WeightsChoice::Pth => fixture.weights_pth.as_ref(),
    };
    let named = named.ok_or_else(|| {
        "names no weights file of the requested kind ('weights' or 'weights_pth')".to_string()
    })?;
    let folder = fixture_path.parent().unwrap_or_else(|| Path::new("."));
    Ok(folder.join(named))
}
