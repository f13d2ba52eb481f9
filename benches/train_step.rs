//! Training throughput of a CIFAR ResNet-32 step on the CPU backend: forward, cross-entropy,
//! backward and an SGD update (momentum 0.9, weight decay) on a batch of 128 32×32 images —
//! the step `bench/pytorch-compare.sh` also times in PyTorch, for the ratio.
//!
//! Run: `cargo bench --bench train_step` (CPU), or `cargo bench --features cuda --bench
//! train_step -- cuda:0`. Prints images/s per model (median of 9 timed steps after one warm-up
//! step) and each model's ratio to the ReLU baseline measured in the same run.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use repro::backend::DeviceSpec;
use repro::config::{ModelConfig, TrainConfig};
use repro::nn::{FusedBackend, Model};
use repro::train::loss::{Loss, Targets};
use repro::train::sgd::Sgd;

const BATCH: usize = 128;
const TIMED: usize = 9;

fn main() {
    repro::backend::keep_freed_memory();
    let models = [
        ("resnet32 relu", "{arch: resnet32, num_classes: 100}"),
        (
            "resnet32 aglu + APA*",
            "{arch: resnet32, num_classes: 100, activation: aglu, attention: se, gate: apa, \
             attention_layernorm: true, attention_dropout: 0.1, reduction: 4, classifier: cosine}",
        ),
    ];
    // `cargo bench` passes `--bench`; the device is the first other argument.
    let device = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "cpu".into());
    let spec: DeviceSpec = device.parse().expect("a device: cpu or cuda:N");
    println!("CIFAR ResNet-32 training step, batch {BATCH}, 32×32, on {spec}:");
    let mut baseline = None;
    for (name, yaml) in models {
        let config = serde_yaml::from_str(yaml).expect("valid model config");
        let rate = match spec {
            DeviceSpec::Cpu => images_per_second::<repro::backend::CpuTrain>(&config, &Default::default()),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(i) => images_per_second::<repro::backend::GpuTrain>(
                &config,
                &burn::backend::cuda::CudaDevice::new(i),
            ),
            #[cfg(not(feature = "cuda"))]
            DeviceSpec::Cuda(_) => panic!("build with --features cuda for {spec}"),
        };
        let base = *baseline.get_or_insert(rate);
        println!("  {name:<22} {rate:>7.1} img/s   {:>5.2}x relu", rate / base);
    }
}

fn images_per_second<B>(config: &ModelConfig, device: &B::Device) -> f64
where
    B: AutodiffBackend + FusedBackend,
    B::InnerBackend: FusedBackend,
{
    let device = device.clone();
    let mut model = Model::<B>::seeded(config, 0, &device);
    let train = TrainConfig::default();
    let mut sgd = Sgd::new(&train);
    let loss = Loss::new(&train.loss, &vec![1; config.num_classes]);
    let x = Tensor::<B, 4>::random([BATCH, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<i64> = (0..BATCH as i64).map(|i| i % config.num_classes as i64).collect();
    let mut times = Vec::new();
    for step in 0..=TIMED {
        let start = Instant::now();
        let targets = Targets::Hard(Tensor::<B, 1, Int>::from_data(
            TensorData::new(labels.clone(), [BATCH]),
            &device,
        ));
        let value = loss.forward(model.forward(x.clone()), targets, 0);
        let grads = GradientsParams::from_grads(value.backward(), &model);
        model = sgd.step(0.1, model, grads);
        // Reading a weight forces the update to finish inside the timing.
        for (_, adaptive) in model.adaptive_modules() {
            let _ = adaptive.learned();
        }
        let _ = model.head().forward(Tensor::zeros([1, 64], &device)).into_data();
        if step > 0 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    BATCH as f64 / times[TIMED / 2]
}
