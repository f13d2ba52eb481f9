//! Planning and status of a 10,000-run sweep, and recording 100,000 metric rows.
//! `cargo bench --bench plan_store` (release build); prints one line per measurement.

use std::time::Instant;

use repro::config::{load_manifest, Overrides};
use repro::plan::expand;
use repro::result::RunResult;
use repro::store::{Claim, Store};

const SWEEP: &str = "id: big\ntitle: 10,000-run sweep\n\
    base: { model: { arch: resnet8 }, data: { dataset: cifar100_lt, imbalance: 100 }, train: { epochs: 200 } }\n\
    axes:\n\
    \x20 lr: { key: train.lr, values: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1] }\n\
    \x20 wd: { key: train.weight_decay, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }\n\
    \x20 act: { key: model.activation, values: [relu, prelu, elu, mish, gelu] }\n\
    \x20 kz: { keys: [model.init.apa_kappa, model.init.apa_lambda], values: [[[-1.0, 0.0], [0.0, 1.0]], [[-0.5, 0.0], [0.0, 0.5]]] }\n\
    seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n";

fn timed<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    println!("{label:<58} {:>8.3} s", start.elapsed().as_secs_f64());
    out
}

fn main() {
    let dir = std::env::temp_dir().join(format!("repro-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("big.yaml");
    std::fs::write(&path, SWEEP).unwrap();
    let store = Store::open(dir.join("bench.sqlite").to_str().unwrap()).unwrap();

    let plan = timed("plan: load + validate + expand 10,000 runs", || {
        let m = load_manifest(&path).unwrap();
        expand(&m, "paper", &Overrides::default()).unwrap()
    });
    assert_eq!(plan.nodes.len(), 10_000);
    timed("plan report vs empty store (repro plan)", || {
        repro::exec::plan_report(&plan, Some(&store)).unwrap()
    });
    timed("register plan in store (start of repro run)", || {
        store.register_plan(&plan).unwrap()
    });

    let prov = repro::store::Provenance::default();
    let claim = Claim {
        owner: "bench:1",
        device: "cpu",
        provenance: &prov,
    };
    let result = RunResult::default()
        .with_metric("test", "top1", 50.0)
        .with_metric("test", "top5", 75.0);
    timed("claim + finish 5,000 runs (10,000 transactions)", || {
        for node in plan.nodes.iter().step_by(2) {
            store.claim(&node.id, &claim).unwrap().unwrap();
            store.finish(&node.id, "bench:1", &result).unwrap();
        }
    });
    timed("status: expand + statuses + classify (repro status NAME)", || {
        let m = load_manifest(&path).unwrap();
        let plan = expand(&m, "paper", &Overrides::default()).unwrap();
        let (report, _) = repro::exec::plan_report(&plan, Some(&store)).unwrap();
        assert_eq!(report.stages[0].done, 5_000);
    });
    timed("status: manifest_runs with final metrics (render query)", || {
        assert_eq!(store.manifest_runs("big", "paper").unwrap().len(), 10_000);
    });
    timed("status: summaries of every manifest (repro status)", || {
        store.manifest_summaries().unwrap()
    });

    let run = &plan.nodes[1].id;
    store.claim(run, &claim).unwrap().unwrap();
    timed("record 40,000 metric rows: 10,000 epochs x 4 metrics", || {
        for epoch in 1..=10_000 {
            let metrics = repro::result::EpochMetrics {
                epoch,
                loss: 1.0 / epoch as f64,
                lr: Some(0.1),
                images_per_s: Some(1000.0),
                test_top1: Some(50.0),
                eval_seconds: None,
            };
            store.record_epoch(run, &metrics).unwrap();
        }
    });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
