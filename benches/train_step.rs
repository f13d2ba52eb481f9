//! Training throughput of one step on the CPU backend: forward, cross-entropy, backward and an
//! update. Three groups: `resnet` (default), a CIFAR ResNet-32 on a batch of 128 32×32 images,
//! ReLU and AGLU + APA*, SGD (momentum 0.9, weight decay); `vit`, ViT-B/16 on a batch of 32 224²
//! images with GELU and with AGLU in its MLPs, SGD; `gpt2`, GPT-2 small on 4 sequences of 1024
//! tokens with GELU-tanh and with AGLU in its MLPs, AdamW. `bench/pytorch-compare.sh` times the
//! same steps in PyTorch, for the ratio.
//!
//! Run: `cargo bench --bench train_step [-- [cpu|cuda:N] [resnet|vit|gpt2]]` (CUDA needs
//! `--features cuda`). Prints images/s or tokens/s per model (median of the timed steps after
//! one warm-up step) and each model's ratio to the group's first model ("base"), measured in the
//! same run.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use repro::backend::DeviceSpec;
use repro::config::{ModelConfig, TrainConfig};
use repro::nn::{FusedBackend, Gpt2, Model};
use repro::train::loss::{Loss, Targets};
use repro::train::optim::Optimizer;

/// What one group times: its models, and the shape of a step.
struct Group {
    title: &'static str,
    models: [(&'static str, &'static str); 2],
    batch: usize,
    input: Input,
    timed: usize,
}

/// What a step's batch holds.
enum Input {
    /// Square images of this side, for a classifier.
    Images(usize),
    /// Sequences of this many tokens, for a language model.
    Tokens(usize),
}

const RESNET: Group = Group {
    title: "CIFAR ResNet-32 training step, batch 128, 32×32",
    models: [
        ("resnet32 relu", "{arch: resnet32, num_classes: 100}"),
        (
            "resnet32 aglu + APA*",
            "{arch: resnet32, num_classes: 100, activation: aglu, attention: se, gate: apa, \
             attention_layernorm: true, attention_dropout: 0.1, reduction: 4, classifier: cosine}",
        ),
    ],
    batch: 128,
    input: Input::Images(32),
    timed: 9,
};

const VIT: Group = Group {
    title: "ViT-B/16 training step, batch 32, 224×224",
    models: [
        (
            "vit_b16 gelu",
            "{arch: vit_b16, num_classes: 1000, activation: gelu}",
        ),
        (
            "vit_b16 aglu",
            "{arch: vit_b16, num_classes: 1000, activation: aglu}",
        ),
    ],
    batch: 32,
    input: Input::Images(224),
    timed: 3,
};

const GPT2: Group = Group {
    title: "GPT-2 small training step, batch 4 × 1024 tokens",
    models: [
        ("gpt2 gelu_tanh", "{arch: gpt2, activation: gelu_tanh}"),
        ("gpt2 aglu", "{arch: gpt2, activation: aglu}"),
    ],
    batch: 4,
    input: Input::Tokens(1024),
    timed: 3,
};

const GROUPS: [&str; 3] = ["resnet", "vit", "gpt2"];

fn main() {
    repro::backend::keep_freed_memory();
    // `cargo bench` passes `--bench`; the device and the group are the other arguments.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let group = match args
        .iter()
        .find(|a| GROUPS.contains(&a.as_str()))
        .map(String::as_str)
    {
        Some("vit") => VIT,
        Some("gpt2") => GPT2,
        _ => RESNET,
    };
    let device = args
        .iter()
        .find(|a| !GROUPS.contains(&a.as_str()))
        .map_or("cpu", String::as_str);
    let spec: DeviceSpec = device.parse().expect("a device: cpu or cuda:N");
    println!("{} on {spec}:", group.title);
    let mut baseline = None;
    for (name, yaml) in group.models {
        let config = serde_yaml::from_str(yaml).expect("valid model config");
        let rate = match spec {
            DeviceSpec::Cpu => {
                examples_per_second::<repro::backend::CpuTrain>(&config, &group, &Default::default())
            }
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(i) => examples_per_second::<repro::backend::GpuTrain>(
                &config,
                &group,
                &burn::backend::cuda::CudaDevice::new(i),
            ),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => panic!("build with --features cuda for {spec}"),
        };
        let base = *baseline.get_or_insert(rate);
        let unit = match group.input {
            Input::Images(_) => "img/s",
            Input::Tokens(_) => "tok/s",
        };
        println!("  {name:<22} {rate:>8.2} {unit}   {:>5.2}x base", rate / base);
    }
}

/// Images or tokens per second of the group's step.
fn examples_per_second<B>(config: &ModelConfig, group: &Group, device: &B::Device) -> f64
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    let device = device.clone();
    let batch = group.batch;
    let seconds = match group.input {
        Input::Images(side) => {
            let model = Model::<B>::seeded(config, 0, &device).expect("an image classifier");
            let mut sgd = Optimizer::new(&TrainConfig::default());
            let x = Tensor::<B, 4>::random([batch, 3, side, side], Distribution::Normal(0.0, 1.0), &device);
            let labels: Vec<i64> = (0..batch as i64).map(|i| i % config.num_classes as i64).collect();
            median_step::<B, _>(group.timed, &device, model, |model| {
                let grads = cross_entropy_grads(model.forward(x.clone()), &labels, &model, &device);
                sgd.step(0.1, model, grads)
            })
        }
        Input::Tokens(length) => {
            let model = Gpt2::<B>::seeded(config, 0, &device).expect("a language model");
            let mut adamw =
                Optimizer::new(&serde_yaml::from_str("{optimizer: adamw, weight_decay: 0.1}").unwrap());
            let tokens: Vec<i64> = (0..(batch * length) as i64)
                .map(|i| (i * 7919) % 50_257)
                .collect();
            let x = Tensor::<B, 2, Int>::from_data(TensorData::new(tokens.clone(), [batch, length]), &device);
            let targets: Vec<i64> = tokens.iter().map(|t| (t + 1) % 50_257).collect();
            median_step::<B, _>(group.timed, &device, model, |model| {
                let logits = model.forward(x.clone()).reshape([batch * length, config.vocab()]);
                let grads = cross_entropy_grads(logits, &targets, &model, &device);
                adamw.step(6e-4, model, grads)
            })
        }
    };
    let examples = match group.input {
        Input::Images(_) => batch,
        Input::Tokens(length) => batch * length,
    };
    examples as f64 / seconds
}

fn cross_entropy_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    logits: Tensor<B, 2>,
    labels: &[i64],
    model: &M,
    device: &B::Device,
) -> GradientsParams {
    let classes = logits.dims()[1];
    let loss = Loss::new(&Default::default(), &vec![1; classes]);
    let targets = Targets::Hard(Tensor::<B, 1, Int>::from_data(
        TensorData::new(labels.to_vec(), [labels.len()]),
        device,
    ));
    GradientsParams::from_grads(loss.forward(logits, targets, 0).backward(), model)
}

/// The median time of `timed` calls of `step` (each taking the model and returning it
/// updated), after one warm-up call.
fn median_step<B: AutodiffBackend, M>(
    timed: usize,
    device: &B::Device,
    mut model: M,
    mut step: impl FnMut(M) -> M,
) -> f64 {
    let mut times = Vec::new();
    for i in 0..=timed {
        let start = Instant::now();
        model = step(model);
        // The update must finish inside the timing (backends may run asynchronously).
        B::sync(device).expect("the device finishes the step");
        if i > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times[timed / 2]
}
