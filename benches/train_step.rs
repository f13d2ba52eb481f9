//! Training throughput of one step on the CPU backend: forward, cross-entropy, backward and an
//! SGD update (momentum 0.9, weight decay). Two groups: `resnet` (default), a CIFAR ResNet-32 on
//! a batch of 128 32×32 images, ReLU and AGLU + APA*; `vit`, ViT-B/16 on a batch of 32 224²
//! images with GELU and with AGLU in its MLPs. `bench/pytorch-compare.sh` times the same steps
//! in PyTorch, for the ratio.
//!
//! Run: `cargo bench --bench train_step [-- [cpu|cuda:N] [resnet|vit]]` (CUDA needs `--features
//! cuda`). Prints images/s per model (median of the timed steps after one warm-up step) and each
//! model's ratio to the group's first model ("base"), measured in the same run.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use repro::backend::DeviceSpec;
use repro::config::{ModelConfig, TrainConfig};
use repro::nn::{FusedBackend, Model};
use repro::train::loss::{Loss, Targets};
use repro::train::optim::Optimizer;

/// What one group times: its models, and the shape of a step.
struct Group {
    title: &'static str,
    models: [(&'static str, &'static str); 2],
    batch: usize,
    side: usize,
    timed: usize,
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
    side: 32,
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
    side: 224,
    timed: 3,
};

fn main() {
    repro::backend::keep_freed_memory();
    // `cargo bench` passes `--bench`; the device and the group are the other arguments.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let group = match args
        .iter()
        .find(|a| *a == "resnet" || *a == "vit")
        .map(String::as_str)
    {
        Some("vit") => VIT,
        _ => RESNET,
    };
    let device = args
        .iter()
        .find(|a| *a != "resnet" && *a != "vit")
        .map_or("cpu", String::as_str);
    let spec: DeviceSpec = device.parse().expect("a device: cpu or cuda:N");
    println!("{} on {spec}:", group.title);
    let mut baseline = None;
    for (name, yaml) in group.models {
        let config = serde_yaml::from_str(yaml).expect("valid model config");
        let rate = match spec {
            DeviceSpec::Cpu => {
                images_per_second::<repro::backend::CpuTrain>(&config, &group, &Default::default())
            }
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(i) => images_per_second::<repro::backend::GpuTrain>(
                &config,
                &group,
                &burn::backend::cuda::CudaDevice::new(i),
            ),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => panic!("build with --features cuda for {spec}"),
        };
        let base = *baseline.get_or_insert(rate);
        println!("  {name:<22} {rate:>7.1} img/s   {:>5.2}x base", rate / base);
    }
}

fn images_per_second<B>(config: &ModelConfig, group: &Group, device: &B::Device) -> f64
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    let device = device.clone();
    let mut model = Model::<B>::seeded(config, 0, &device);
    let train = TrainConfig::default();
    let mut sgd = Optimizer::new(&train);
    let loss = Loss::new(&train.loss, &vec![1; config.num_classes]);
    let (batch, side) = (group.batch, group.side);
    let x = Tensor::<B, 4>::random([batch, 3, side, side], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % config.num_classes as i64).collect();
    let mut times = Vec::new();
    for step in 0..=group.timed {
        let start = Instant::now();
        let targets = Targets::Hard(Tensor::<B, 1, Int>::from_data(
            TensorData::new(labels.clone(), [batch]),
            &device,
        ));
        let value = loss.forward(model.forward(x.clone()), targets, 0);
        let grads = GradientsParams::from_grads(value.backward(), &model);
        model = sgd.step(0.1, model, grads);
        // The update must finish inside the timing (backends may run asynchronously).
        B::sync(&device).expect("the device finishes the step");
        if step > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    batch as f64 / times[group.timed / 2]
}
