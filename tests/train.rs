//! The training engine end to end on the synthetic source: tiny models learn, AGLU + APA* train,
//! a resumed run ends exactly where an uninterrupted one does, and bad configs are rejected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use repro::config::RunConfig;
use repro::train::{train, RunStatus, TrainContext, TrainError};

type B = Autodiff<Flex>;

/// resnet8 on 10 synthetic classes of 16×16 images, a few hundred images, CPU-sized.
fn tiny(model_extra: &str, epochs: usize) -> RunConfig {
    let yaml = format!(
        "seed: 3
model: {{arch: resnet8, num_classes: 10, reduction: 4{model_extra}}}
data: {{dataset: synthetic_lt, classes: 10, image_size: 16, imbalance: 10, train_per_class_max: 60,
        test_per_class: 20, workers: 1}}
train: {{epochs: {epochs}, batch_size: 32, lr: 0.05, weight_decay: 5.0e-4,
         schedule: {{warmup_epochs: 1}}, checkpoint_every: 2}}"
    );
    serde_yaml::from_str(&yaml).expect("valid run config")
}

fn top1(run: &RunConfig, ctx: &TrainContext) -> f64 {
    let result = train::<B>(run, ctx, &Default::default()).expect("trains");
    assert_eq!(result.status, RunStatus::Done);
    result.test.expect("evaluated").top1
}

#[test]
fn resnet8_learns_the_synthetic_classes_well_above_chance() {
    let accuracy = top1(&tiny("", 6), &TrainContext::default());
    assert!(accuracy > 40.0, "top-1 {accuracy}% (chance 10%)");
}

#[test]
fn aglu_with_apa_star_attention_learns_too() {
    let model = ", activation: aglu, attention: se, gate: apa, attention_layernorm: true, attention_dropout: 0.1, classifier: cosine";
    let accuracy = top1(&tiny(model, 6), &TrainContext::default());
    assert!(accuracy > 40.0, "top-1 {accuracy}% (chance 10%)");
}

#[test]
fn a_resumed_run_ends_exactly_where_an_uninterrupted_one_does() {
    let run = tiny(
        ", activation: aglu, attention: se, gate: apa, attention_layernorm: true, attention_dropout: 0.1",
        4,
    );
    let dir = std::env::temp_dir().join(format!("repro-train-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    let straight = train::<B>(&run, &TrainContext::default(), &Default::default()).unwrap();

    let cancel = Arc::new(AtomicBool::new(false));
    let stop = cancel.clone();
    let stop_after_two = move |m: &repro::train::EpochMetrics| {
        if m.epoch == 2 {
            stop.store(true, Ordering::Relaxed);
        }
    };
    let first = TrainContext {
        out_dir: Some(dir.clone()),
        resume: true,
        cancel: Some(cancel),
        on_epoch: Some(&stop_after_two),
        ..TrainContext::default()
    };
    match train::<B>(&run, &first, &Default::default()) {
        Err(TrainError::Interrupted { epochs_done: 2 }) => {}
        other => panic!("expected an interruption after epoch 2, got {other:?}"),
    }
    let second = TrainContext {
        out_dir: Some(dir.clone()),
        resume: true,
        ..TrainContext::default()
    };
    let resumed = train::<B>(&run, &second, &Default::default()).unwrap();

    assert_eq!(resumed.epochs.len(), 2, "only epochs 3 and 4 ran again");
    assert_eq!(resumed.test, straight.test, "same final metrics");
    assert_eq!(resumed.learned, straight.learned, "same learned κ/λ");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_class_count_is_rejected_before_any_work() {
    let mut run = tiny("", 1);
    run.model.num_classes = 7;
    let err = train::<B>(&run, &TrainContext::default(), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("model.num_classes"), "{err}");
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let err = serde_yaml::from_str::<RunConfig>("train: {epochz: 3}").unwrap_err();
    assert!(err.to_string().contains("epochz"), "{err}");
}
