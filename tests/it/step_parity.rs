//! Step-level parity with the reference implementation: from the reference's own initial weights
//! (checkpoint import) and the same fixed batches, repro's training step (model forward in
//! training mode, cross-entropy, SGD with the reference's parameter groups) gives the same loss
//! at every step and the same eval-mode logits afterwards.
//!
//! Fixtures: `scripts/make-step-parity-fixture.py` (ResNet-8 ReLU/linear, and the paper's
//! CIFAR-LT model at depth 8: APA* SE gate + AGLU + cosine classifier, SE dropout 0, both with
//! SGD; and timm's ViT at the `vit_test` geometry with AGLU, AdamW and gradient clipping, whose
//! fixture carries repro's `train:` section).
//!
//! Tolerance: each fixture also holds the same run in float64; |f32 − f64| of the reference is
//! its own rounding noise (2.3e-7 and 9.7e-7 in loss over the 4 steps). An independent float32
//! implementation sums in another order and carries noise of that size (measured: 2.4e-7 and
//! 1.9e-6). 2e-5 on the loss sits 10× above that and 10× below the smallest real difference
//! tried: exempting norm parameters and biases from weight decay (repro's Table 8 defaults, not
//! the reference code's) moves the step-4 loss by 2.2e-4 and 1.4e-3; dropping momentum by 0.17
//! and 0.65. Eval logits (after 4 updates and running-statistic updates) get 2e-4 of the
//! largest logit (measured: 1.9e-6 and 1.9e-5 absolute, largest logits 3.4 and 5.4).

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use repro::backend::CpuTrain;
use repro::config::train::LossConfig;
use repro::config::{ModelConfig, TrainConfig};
use repro::nn::import::{load_state_dict, read_state_dict};
use repro::nn::Model;
use repro::train::loss::{Loss, Targets};
use repro::train::optim::Optimizer;
use serde_json::Value;

const LOSS_TOLERANCE: f64 = 2e-5;
const LOGIT_TOLERANCE: f64 = 2e-4;

struct Fixture {
    json: Value,
    dir: &'static Path,
}

impl Fixture {
    fn load(name: &str) -> Self {
        let dir = Path::new("tests/fixtures/step_parity");
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        Fixture {
            json: serde_json::from_str(&text).unwrap(),
            dir,
        }
    }

    fn f64s(&self, key: &str) -> Vec<f64> {
        self.json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    }

    /// Batch `step`, normalised as torchvision's ToTensor + Normalize: both are correctly
    /// rounded float32 operations, so the inputs are bit-identical to the reference's.
    fn batch(&self, step: usize) -> (Vec<f32>, [usize; 4], Vec<i64>) {
        let shape: Vec<usize> = self.json["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let (n, c, h, w) = (shape[1], shape[2], shape[3], shape[4]);
        let bytes = std::fs::read(self.dir.join(self.json["inputs"].as_str().unwrap())).unwrap();
        let per_step = n * c * h * w;
        let mean = self.f64s("normalize_mean");
        let std = self.f64s("normalize_std");
        let pixels = &bytes[step * per_step..(step + 1) * per_step];
        let x = pixels
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let ch = (i / (h * w)) % c;
                (f32::from(p) / 255.0 - mean[ch] as f32) / std[ch] as f32
            })
            .collect();
        let labels = self.json["labels"][step]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        (x, [n, c, h, w], labels)
    }
}

/// Losses of every step and eval logits of batch 0 after the last step, by repro.
fn run_repro(fx: &Fixture) -> (Vec<f64>, Vec<f64>) {
    let device = Default::default();
    let config: ModelConfig = serde_json::from_value(fx.json["model"].clone()).unwrap();
    let weights = fx.dir.join(fx.json["weights"].as_str().unwrap());
    let model = Model::<CpuTrain>::new(&config, &device).expect("an image classifier");
    let mut model = load_state_dict(model, read_state_dict(&weights).unwrap(), &weights, &device).unwrap();
    let train = match fx.json.get("train") {
        Some(section) => serde_json::from_value(section.clone()).unwrap(),
        None => {
            // The reference's set_weight_decay: decay on conv/linear weights, biases and norm
            // parameters alike; κ/λ exempt.
            let wd = fx.json["weight_decay"].as_f64().unwrap();
            TrainConfig {
                momentum: fx.json["momentum"].as_f64().unwrap(),
                weight_decay: wd,
                norm_weight_decay: None,
                bias_weight_decay: wd,
                adaptive_weight_decay: 0.0,
                ..TrainConfig::default()
            }
        }
    };
    let classes = config.num_classes;
    let mut optimizer = Optimizer::<repro::backend::Cpu>::new(&train);
    let loss = Loss::new(&LossConfig::default(), &vec![1; classes]);
    let lr = fx.json["lr"].as_f64().unwrap();
    let steps = fx.json["labels"].as_array().unwrap().len();
    let mut losses = Vec::new();
    for step in 0..steps {
        let (x, shape, labels) = fx.batch(step);
        let n = labels.len();
        let x = Tensor::<CpuTrain, 4>::from_data(TensorData::new(x, shape), &device);
        let y = Tensor::<CpuTrain, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
        let value = loss.forward(model.forward(x), Targets::Hard(y), 0);
        losses.push(value.clone().into_scalar().elem::<f64>());
        let grads = GradientsParams::from_grads(value.backward(), &model);
        model = optimizer.step(lr, model, grads);
    }
    let (x, shape, _) = fx.batch(0);
    let eval = model.valid();
    let logits = eval.forward(Tensor::from_data(TensorData::new(x, shape), &device));
    let logits = logits
        .into_data()
        .to_vec::<f32>()
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect();
    (losses, logits)
}

fn check(name: &str) {
    let fx = Fixture::load(name);
    let (losses, logits) = run_repro(&fx);
    let theirs = fx.f64s("losses");
    let noise = theirs
        .iter()
        .zip(fx.f64s("losses_f64"))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let mut worst = 0.0f64;
    for (step, (ours, theirs)) in losses.iter().zip(&theirs).enumerate() {
        let diff = (ours - theirs).abs();
        worst = worst.max(diff);
        eprintln!("{name} step {step}: repro {ours:.7} reference {theirs:.7} |Δ| {diff:.2e}");
    }
    eprintln!("{name}: max loss |Δ| {worst:.2e} (reference f32-vs-f64 noise {noise:.2e})");
    assert_eq!(losses.len(), theirs.len());
    assert!(
        worst <= LOSS_TOLERANCE,
        "{name}: per-step losses differ by up to {worst:.3e}"
    );

    let reference = fx.f64s("eval_logits_batch0");
    let scale = reference.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let logit_diff = logits
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("{name}: eval logits max |Δ| {logit_diff:.2e} (largest logit {scale:.3})");
    assert_eq!(logits.len(), reference.len());
    assert!(
        logit_diff <= LOGIT_TOLERANCE * scale,
        "{name}: eval logits after the steps differ by up to {logit_diff:.3e}"
    );
}

#[test]
fn resnet8_relu_linear_trains_like_the_reference() {
    check("resnet8_relu_linear");
}

#[test]
fn se_resnet8_apa_aglu_cosine_trains_like_the_reference() {
    check("se_resnet8_apa_aglu_cosine");
}

/// timm's ViT recipe: AdamW, no decay on norms, biases, embeddings and κ/λ, gradients clipped
/// (their norm is 3.4–5.0 against a limit of 1, so every step clips).
#[test]
fn vit_aglu_trains_with_adamw_like_timm() {
    check("vit_test_aglu_adamw");
}
