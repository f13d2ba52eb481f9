//! The results site of a 10,000-run table: `cargo bench --bench site` (release build); prints
//! one line per measurement and the size of what a browser loads first.
//!
//! Every run is done and carries what a real run records: 30 epochs of curves, 100 classes'
//! results, 32 learned κ/λ values and two artifacts.

use std::time::Instant;

use repro::config::{load_manifest, Overrides};
use repro::plan::expand;
use repro::render::site::{build_site, SiteInput};
use repro::render::Templates;
use repro::result::{Artifact, ClassResult, EpochMetrics, LearnedParam, RunResult};
use repro::store::{Claim, Store};

const TABLE: &str = "id: big\ntitle: 10,000-run table\n\
    base: { model: { arch: resnet8 }, data: { dataset: cifar100_lt, imbalance: 100 }, train: { epochs: 30 } }\n\
    axes:\n\
    \x20 act: { key: model.activation, values: [relu, prelu, elu, mish, gelu] }\n\
    \x20 lr: { key: train.lr, values: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1] }\n\
    \x20 wd: { key: train.weight_decay, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20] }\n\
    seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n\
    table: { rows: [act, lr], column_axis: wd, columns: [{ metric: top1 }] }\n";

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    println!("{label:<58} {:>8.3} s", start.elapsed().as_secs_f64());
    out
}

/// What a finished run of 30 epochs on 100 classes records.
fn result(i: usize) -> RunResult {
    let mut r = RunResult {
        reported_epoch: Some(30),
        epochs: (1..=30)
            .map(|epoch| EpochMetrics {
                epoch,
                loss: 4.0 / epoch as f64,
                lr: Some(0.1),
                images_per_s: Some(1000.0),
                test_top1: (epoch % 5 == 0).then_some(epoch as f64),
                eval_seconds: (epoch % 5 == 0).then_some(4.0),
                ..EpochMetrics::default()
            })
            .collect(),
        classes: (0..100)
            .map(|class| ClassResult {
                class,
                n_train: 500 / (class as u64 + 1),
                n_test: 100,
                correct: (i as u64 + class as u64) % 100,
            })
            .collect(),
        learned: (0..16)
            .flat_map(|layer| {
                ["kappa", "lambda"].map(|name| LearnedParam {
                    module: format!("layer{layer}.act"),
                    name: name.into(),
                    value: 1.0 + layer as f64 / 16.0,
                })
            })
            .collect(),
        artifacts: vec![Artifact {
            kind: "checkpoint".into(),
            path: format!("results/runs/{i}/model.mpk").into(),
            sha256: Some("ab".repeat(32)),
            bytes: Some(1 << 20),
        }],
        ..RunResult::default()
    };
    r.set_metric("test", "top1", 40.0 + (i % 17) as f64);
    r
}

/// `REPRO_BENCH_DIR=DIR` keeps the store there and reuses it on the next run (set-up takes
/// minutes); otherwise a temporary folder is made and removed.
fn main() {
    let kept = std::env::var_os("REPRO_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = kept
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("repro-bench-site-{}", std::process::id())));
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir).unwrap();
    let stored = dir.join("bench.sqlite").exists();
    let path = dir.join("big.yaml");
    std::fs::write(&path, TABLE).unwrap();
    let m = load_manifest(&path).unwrap();
    let plan = expand(&m, "paper", &Overrides::default()).unwrap();
    assert_eq!(plan.nodes.len(), 10_000);
    let store = Store::open(dir.join("bench.sqlite").to_str().unwrap()).unwrap();
    if !stored {
        fill(&store, &plan, "store 10,000 finished runs (set-up, not the site)");
    }
    let templates = Templates::new(None).unwrap();
    let site = dir.join("site");
    let _ = std::fs::remove_dir_all(&site);
    let tables = [(m.clone(), "paper".to_string())];
    let manifests = [m];
    let build = || {
        let input = SiteInput {
            store: &store,
            tables: &tables,
            manifests: &manifests,
            profiles: &[],
        };
        build_site(&input, &templates, &site).unwrap()
    };
    let report = timed("build the site (repro report): 10,000 runs, first time", build);
    assert_eq!(report.redrawn, 10_000);
    let again = timed("build it again, nothing changed", build);
    assert_eq!(again.redrawn, 0);
    let rerun: Vec<&str> = plan.nodes.iter().take(100).map(|n| n.id.as_str()).collect();
    store.remove(&rerun).unwrap();
    fill(&store, &plan, "100 runs run again (set-up, not the site)");
    let after = timed("build it again after 100 runs ran again", build);
    assert_eq!(after.redrawn, 100);
    println!("{} pages", report.pages);
    let kib = |name: &str| {
        std::fs::metadata(site.join(name))
            .map(|m| m.len() / 1024)
            .unwrap_or(0)
    };
    println!(
        "index.html {} KiB, runs.html {} KiB (one of {} pages), runs.js {} KiB",
        kib("index.html"),
        kib("runs.html"),
        10_000_usize.div_ceil(repro::render::site::RUNS_PAGE_SIZE),
        kib("runs.js")
    );
    drop(store);
    if kept.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs every run of the plan not done yet, recording `result`.
fn fill(store: &Store, plan: &repro::plan::Plan, label: &str) {
    store.register_plan(plan).unwrap();
    let prov = repro::store::Provenance::default();
    let claim = Claim {
        owner: "bench:1",
        device: "cpu",
        provenance: &prov,
        job: None,
    };
    timed(label, || {
        for (i, node) in plan.nodes.iter().enumerate() {
            if store.claim(&node.id, &claim).unwrap().is_some() {
                store.finish(&node.id, "bench:1", &result(i)).unwrap();
            }
        }
    });
}
