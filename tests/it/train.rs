//! The training engine end to end on the synthetic source: tiny models learn, AGLU + APA* train,
//! a resumed run ends exactly where an uninterrupted one does, and bad configs are rejected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use repro::config::train::EmaConfig;
use repro::config::RunConfig;
use repro::result::EpochMetrics;
use repro::train::{fit, Observer, TrainContext, TrainError};

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
    let result = fit::<B>(run, ctx, &Default::default()).expect("trains");
    assert_eq!(result.diverged, None);
    result.metric("test", "top1").expect("evaluated")
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

/// The smallest ViT (4-pixel patches of 16×16 images: 16 tokens) and Swin (2-pixel patches: an
/// 8×8 grid of shifted 4×4 windows, then 4×4) on the same images, with GELU and with AGLU in
/// their MLPs, trained by AdamW as timm's recipe.
#[test]
fn small_transformers_learn_with_gelu_and_with_aglu() {
    for arch in ["vit_test", "swin_test"] {
        for activation in ["gelu", "aglu"] {
            let mut run = tiny("", 8);
            run.model = serde_yaml::from_str(&format!(
                "{{arch: {arch}, num_classes: 10, image_size: 16, activation: {activation}}}"
            ))
            .unwrap();
            run.train.optimizer = repro::config::train::OptimizerKind::Adamw;
            run.train.lr = 2e-3;
            run.train.weight_decay = 0.05;
            let accuracy = top1(&run, &TrainContext::default());
            assert!(
                accuracy > 25.0,
                "{arch} {activation}: top-1 {accuracy}% (chance 10%)"
            );
        }
    }
}

#[test]
fn a_vit_whose_position_embedding_does_not_fit_the_images_is_rejected() {
    let mut run = tiny("", 1);
    run.model = serde_yaml::from_str("{arch: vit_test, num_classes: 10, image_size: 32}").unwrap();
    let err = run.validate().unwrap_err();
    assert_eq!(err.key, "model.image_size");
    assert!(err.reason.contains("16×16"), "{}", err.reason);
    run.model.image_size = Some(18);
    assert_eq!(run.validate().unwrap_err().key, "model.image_size");
}

/// A ViT (no batch statistics, so the split cannot matter) trained by AdamW with clipping: two
/// half batches accumulated make the same updates as one full batch, up to summation order.
///
/// Summation order differs between CPUs (the matrix kernels' reduction blocking), and Adam
/// magnifies it: a gradient component near zero can change sign. So the accumulated run is held
/// to the effect size rather than to a fixed bound: it must end far closer to the full-batch run
/// than a run taking twice as many half-size steps does.
#[test]
fn accumulating_two_half_batches_trains_like_one_full_batch() {
    // 320 training images: every epoch splits into whole batches of 32 and of 16.
    let run = |batch_size: usize, accumulate: usize| -> RunConfig {
        let yaml = format!(
            "seed: 5
model: {{arch: vit_test, num_classes: 10, image_size: 16, activation: aglu}}
data: {{dataset: synthetic_lt, classes: 10, image_size: 16, imbalance: 1, train_per_class_max: 32,
        test_per_class: 10, workers: 1}}
train: {{epochs: 2, batch_size: {batch_size}, accumulate: {accumulate}, optimizer: adamw, lr: 1.0e-3,
         weight_decay: 0.05, clip_grad_norm: 1.0, schedule: {{warmup_epochs: 1, step: iteration}}}}"
        );
        serde_yaml::from_str(&yaml).expect("valid run config")
    };
    let [whole, halves, more_steps] = [(32, 1), (16, 2), (16, 1)].map(|(batch, accumulate)| {
        fit::<B>(
            &run(batch, accumulate),
            &TrainContext::default(),
            &Default::default(),
        )
        .unwrap()
    });
    // The final loss and every learned κ and λ, as one point per run.
    let point = |r: &repro::result::RunResult| -> Vec<f64> {
        let names = |r: &repro::result::RunResult| -> Vec<String> {
            r.learned
                .iter()
                .map(|p| format!("{} {}", p.module, p.name))
                .collect()
        };
        assert_eq!(names(r), names(&whole));
        let loss = r.epochs.last().unwrap().loss;
        std::iter::once(loss)
            .chain(r.learned.iter().map(|p| p.value))
            .collect()
    };
    let distance =
        |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) };
    assert!(whole.learned.len() == 4, "κ and λ of two blocks");
    let (reference, accumulated, smaller) = (point(&whole), point(&halves), point(&more_steps));
    let (off, effect) = (distance(&reference, &accumulated), distance(&reference, &smaller));
    assert!(
        effect > 1e-3 && off < effect / 20.0,
        "accumulated {accumulated:?} is {off:.2e} from the full batch {reference:?}; \
         half-size steps {smaller:?} are {effect:.2e} from it"
    );
}

#[test]
fn adamw_keys_are_checked_against_the_optimizer() {
    let mut run = tiny("", 1);
    run.train.betas = [0.9, 0.95];
    assert_eq!(
        run.validate().unwrap_err().key,
        "train.optimizer",
        "betas without adamw"
    );
    run.train.optimizer = repro::config::train::OptimizerKind::Adamw;
    run.validate().unwrap();
    run.train.betas = [0.9, 1.0];
    assert_eq!(run.validate().unwrap_err().key, "train.betas");
    run.train.betas = [0.9, 0.999];
    run.train.clip_grad_norm = Some(0.0);
    assert_eq!(run.validate().unwrap_err().key, "train.clip_grad_norm");
    run.train.clip_grad_norm = None;
    run.train.accumulate = 0;
    assert_eq!(run.validate().unwrap_err().key, "train.accumulate");
}

#[test]
fn evaluating_every_epoch_ends_with_the_same_final_result_as_evaluating_once() {
    let mut run = tiny(
        ", activation: aglu, attention: se, gate: apa, attention_layernorm: true",
        2,
    );
    run.eval.analyses.nc1 = true;
    let once = fit::<B>(&run, &TrainContext::default(), &Default::default()).unwrap();
    run.eval.eval_every = 1;
    let every = fit::<B>(&run, &TrainContext::default(), &Default::default()).unwrap();

    assert_eq!(every.metrics, once.metrics, "same final metrics, nc1 included");
    assert_eq!(every.classes, once.classes);
    let last_epoch = every.epochs.last().and_then(|e| e.test_top1);
    assert_eq!(
        last_epoch,
        every.metric("test", "top1"),
        "the last epoch's top-1 is the final one"
    );
}

#[test]
fn a_resumed_run_ends_exactly_where_an_uninterrupted_one_does() {
    let run = tiny(
        ", activation: aglu, attention: se, gate: apa, attention_layernorm: true, attention_dropout: 0.1",
        4,
    );
    resumes_exactly(&run);
}

/// AdamW's moments and its update count (bias correction) survive the checkpoint too.
#[test]
fn an_adamw_run_resumes_exactly_too() {
    let mut run = tiny("", 4);
    run.model =
        serde_yaml::from_str("{arch: vit_test, num_classes: 10, image_size: 16, activation: aglu}").unwrap();
    run.train = serde_yaml::from_str(
        "{epochs: 4, batch_size: 32, optimizer: adamw, lr: 1.0e-3, weight_decay: 0.05, clip_grad_norm: 1.0,
          schedule: {warmup_epochs: 1}, checkpoint_every: 2}",
    )
    .unwrap();
    resumes_exactly(&run);
}

/// The weight average is checkpointed: with it (and BatchNorm statistics in it), a resumed run
/// ends with the same average too.
#[test]
fn a_run_with_a_weight_average_resumes_exactly() {
    let mut run = tiny(", attention: se", 4);
    run.train.ema = Some(EmaConfig {
        decay: 0.99,
        steps: 2,
    });
    resumes_exactly(&run);
}

/// The reference's rule: during the warm-up epochs the average only copies the weights, so a
/// run that is all warm-up ends with the model itself; after warm-up it lags behind the model.
#[test]
fn the_weight_average_copies_during_warm_up_and_lags_after() {
    let mut run = tiny("", 2);
    run.train.ema = Some(EmaConfig {
        decay: 0.99,
        steps: 1,
    });
    let nll = |run: &RunConfig| {
        let result = fit::<B>(run, &TrainContext::default(), &Default::default()).unwrap();
        let [model, average] = ["test", "ema"].map(|split| result.metric(split, "nll").unwrap());
        (model, average)
    };
    run.train.schedule.warmup_epochs = 2;
    let (model, average) = nll(&run);
    assert_eq!(model, average, "all warm-up: the average is the last weights");
    run.train.schedule.warmup_epochs = 1;
    let (model, average) = nll(&run);
    assert!((model - average).abs() > 1e-4, "{model} vs {average}");
}

/// Stopped after epoch 2 of 4 and resumed, `run` ends exactly as when it runs straight through.
fn resumes_exactly(run: &RunConfig) {
    let tmp = crate::common::scratch();
    let dir = tmp.path().to_path_buf();

    let straight = fit::<B>(run, &TrainContext::default(), &Default::default()).unwrap();

    let cancel = Arc::new(AtomicBool::new(false));
    let stop_after_two = StopAfter(2, cancel.clone());
    let first = TrainContext {
        out_dir: Some(dir.clone()),
        resume: true,
        cancel: Some(cancel),
        observer: Some(&stop_after_two),
        ..TrainContext::default()
    };
    match fit::<B>(run, &first, &Default::default()) {
        Err(TrainError::Interrupted { epochs_done: 2 }) => {}
        other => panic!("expected an interruption after epoch 2, got {other:?}"),
    }
    let second = TrainContext {
        out_dir: Some(dir.clone()),
        resume: true,
        ..TrainContext::default()
    };
    let resumed = fit::<B>(run, &second, &Default::default()).unwrap();

    assert_eq!(resumed.epochs.len(), 2, "only epochs 3 and 4 ran again");
    assert_eq!(resumed.metrics, straight.metrics, "same final metrics");
    assert_eq!(
        resumed.metrics.contains_key("ema"),
        run.train.ema.is_some(),
        "the weight average is evaluated when there is one"
    );
    assert_eq!(resumed.classes, straight.classes, "same per-class results");
    assert_eq!(resumed.learned, straight.learned, "same learned κ/λ");
}

#[test]
fn a_wrong_class_count_is_rejected_before_any_work() {
    let mut run = tiny("", 1);
    run.model.num_classes = 7;
    let err = fit::<B>(&run, &TrainContext::default(), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("model.num_classes"), "{err}");
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let err = serde_yaml::from_str::<RunConfig>("train: {epochz: 3}").unwrap_err();
    assert!(err.to_string().contains("epochz"), "{err}");
}

fn weights(dir: &std::path::Path) -> repro::nn::import::StateDict {
    repro::nn::import::read_state_dict(&dir.join("checkpoint.safetensors")).unwrap()
}

fn differs(a: &repro::nn::import::StateDict, b: &repro::nn::import::StateDict, key: &str) -> bool {
    a[key].to_vec::<f32>().unwrap() != b[key].to_vec::<f32>().unwrap()
}

#[test]
fn crt_and_finetune_start_from_the_parent_and_train_only_their_part() {
    let tmp = crate::common::scratch();
    let root = tmp.path().to_path_buf();
    let ctx = |dir: &str, parent: Option<&str>| TrainContext {
        out_dir: Some(root.join(dir)),
        parent_checkpoint: parent.map(|p| root.join(p).join("checkpoint.safetensors")),
        ..TrainContext::default()
    };
    let parent_run = tiny(", attention: se, gate: apa", 2);
    fit::<B>(&parent_run, &ctx("parent", None), &Default::default()).unwrap();

    let mut crt = parent_run.clone();
    crt.train.from_parent = repro::config::train::FromParent::Crt;
    crt.data.sampler = repro::config::data::SamplerKind::ClassBalanced;
    let result = fit::<B>(&crt, &ctx("crt", Some("parent")), &Default::default()).unwrap();
    assert!(result.metric("test", "top1").is_some());
    let (parent, after_crt) = (weights(&root.join("parent")), weights(&root.join("crt")));
    assert!(
        !differs(&parent, &after_crt, "layer3.0.conv2.weight"),
        "cRT keeps the backbone"
    );
    assert!(
        !differs(&parent, &after_crt, "bn1.running_mean"),
        "cRT keeps BatchNorm statistics"
    );
    assert!(
        differs(&parent, &after_crt, "linear.weight"),
        "cRT trains a new classifier"
    );

    let mut finetune = parent_run.clone();
    finetune.train.from_parent = repro::config::train::FromParent::Finetune;
    finetune.model.num_classes = 5;
    finetune.data.classes = Some(5);
    fit::<B>(&finetune, &ctx("finetune", Some("parent")), &Default::default()).unwrap();
    let after_ft = weights(&root.join("finetune"));
    assert!(
        !differs(&parent, &after_ft, "layer1.0.conv1.weight"),
        "early stages are frozen"
    );
    assert!(
        differs(&parent, &after_ft, "layer3.0.conv1.weight"),
        "the last stage trains"
    );
    assert_eq!(
        after_ft["linear.weight"].shape.to_vec(),
        vec![5, 64],
        "a new 5-class head"
    );

    let mut orphan = crt.clone();
    orphan.seed = 9;
    let err = fit::<B>(&orphan, &TrainContext::default(), &Default::default()).unwrap_err();
    assert!(err.to_string().contains("train.from_parent"), "{err}");
}

#[test]
fn analyses_report_attention_nc1_and_ks_when_asked() {
    let mut run = tiny(", attention: cbam, gate: apa", 1);
    run.eval.analyses = repro::config::eval::AnalysesConfig {
        attention: true,
        nc1: true,
        ks: true,
    };
    let result = fit::<B>(&run, &TrainContext::default(), &Default::default()).unwrap();
    let a = &result.analyses;
    // resnet8 has 3 blocks, each with a channel and a spatial map.
    assert_eq!(a.attention.len(), 6, "{:?}", a.attention);
    assert_eq!(a.attention[0].layer, "layer1.0.attention.channel");
    assert!(a
        .attention
        .iter()
        .all(|s| s.frequent_entropy.is_finite() && s.rare_variance >= 0.0));
    assert!(a.nc1.is_some_and(|v| v.is_finite() && v > 0.0), "{:?}", a.nc1);
    assert_eq!(a.ks.len(), 10);
    assert!(!a.ks[0].logits.is_empty() && a.ks[4].logits.is_empty());
    let plain = fit::<B>(&tiny("", 1), &TrainContext::default(), &Default::default()).unwrap();
    assert_eq!(plain.analyses, Default::default(), "analyses are off by default");
}

#[test]
fn a_diverging_run_stops_with_its_reason() {
    let mut run = tiny("", 2);
    run.train.lr = 1.0e30;
    run.train.schedule.warmup_epochs = 0;
    let result = fit::<B>(&run, &TrainContext::default(), &Default::default()).unwrap();
    match &result.diverged {
        Some(reason) => assert!(
            reason.contains("loss became") && reason.contains("at epoch 1"),
            "{reason}"
        ),
        None => panic!("expected divergence in epoch 1"),
    }
    assert!(
        result.metrics.is_empty(),
        "a diverged run reports no test numbers"
    );
}

/// Cancels the run after this many epochs, as Ctrl-C would.
struct StopAfter(usize, Arc<AtomicBool>);

impl Observer for StopAfter {
    fn epoch(&self, metrics: &EpochMetrics, _epochs: usize) {
        if metrics.epoch == self.0 {
            self.1.store(true, Ordering::Relaxed);
        }
    }
}

/// The two-block GPT on the generated corpus (GPT-2 tokens renumbered into 128), trained by
/// AdamW with build-nanogpt's warm-up in updates and cosine per update.
fn small_gpt(activation: &str, epochs: usize, tokens: usize) -> RunConfig {
    let yaml = format!(
        "seed: 3
model: {{arch: gpt2_test, vocab_size: 128, activation: {activation}}}
data: {{dataset: synthetic_text, text: {{sequence_length: 32, val_tokens: 1024, synthetic_tokens: {tokens},
        synthetic_questions: 40}}}}
train: {{epochs: {epochs}, batch_size: 16, optimizer: adamw, lr: 1.0e-2, betas: [0.9, 0.95], weight_decay: 0.1,
         clip_grad_norm: 1.0, checkpoint_every: 2,
         schedule: {{warmup_steps: 5, warmup_start_factor: 0.1, min_lr: 1.0e-3, step: iteration}}}}
eval: {{eval_every: 1}}"
    );
    serde_yaml::from_str(&yaml).expect("valid run config")
}

/// Chance is 25% on the generated questions; a GPT that has learned who lives where and likes
/// what answers most of them, with GELU-tanh and with AGLU in its MLPs.
#[test]
fn a_small_gpt_learns_the_generated_corpus_with_gelu_and_with_aglu() {
    for activation in ["gelu_tanh", "aglu"] {
        let result = fit::<B>(
            &small_gpt(activation, 4, 20_000),
            &TrainContext::default(),
            &Default::default(),
        )
        .expect("trains");
        assert_eq!(result.diverged, None);
        let accuracy = result.metric("hellaswag", "acc_norm").expect("evaluated");
        assert!(accuracy > 60.0, "{activation}: acc_norm {accuracy}% (chance 25%)");
        let val = result.metric("val", "loss").expect("validated");
        let first = result.epochs[0].val_loss.expect("every epoch validated");
        assert!(val < first && val < 1.5, "{activation}: val loss {first} → {val}");
        assert!(result
            .epochs
            .iter()
            .all(|e| e.tokens_per_s.is_some() && e.images_per_s.is_none()));
        let learned = result.learned.len();
        assert_eq!(
            learned,
            if activation == "aglu" { 4 } else { 0 },
            "κ and λ of both blocks' AGLU"
        );
    }
}

#[test]
fn a_gpt_resumes_exactly_where_it_stopped_in_the_token_stream() {
    resumes_exactly(&small_gpt("aglu", 4, 8_000));
}

#[test]
fn a_language_model_on_images_is_rejected_before_any_work() {
    let mut run = tiny("", 1);
    run.model = serde_yaml::from_str("{arch: gpt2_test}").unwrap();
    let err = fit::<B>(&run, &TrainContext::default(), &Default::default()).unwrap_err();
    assert!(
        err.to_string().contains("model.arch") && err.to_string().contains("a language model"),
        "{err}"
    );
}
