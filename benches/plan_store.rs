//! Planning and status of a 10,000-run sweep, recording 40,000 metric rows, and claims by 16
//! concurrent workers, on SQLite and, when `REPRO_BENCH_POSTGRES` names a server (a URL whose
//! role may create databases), on PostgreSQL too.
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
    let mut stores = vec![("sqlite", dir.join("bench.sqlite").display().to_string())];
    if let Ok(server) = std::env::var("REPRO_BENCH_POSTGRES") {
        stores.push(("postgres", fresh_database(&server)));
    }
    for (backend, url) in stores {
        println!("-- {backend}");
        bench_store(&path, &url);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A new database on the server at `server` (`postgres://…/DB`), as a URL.
fn fresh_database(server: &str) -> String {
    use sqlx::Connection;
    let name = format!("bench_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut conn = sqlx::postgres::PgConnection::connect(server).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    format!("{}/{name}", server.rsplit_once('/').unwrap().0)
}

fn bench_store(path: &std::path::Path, url: &str) {
    let store = Store::open(url).unwrap();
    let plan = timed("plan: load + validate + expand 10,000 runs", || {
        let m = load_manifest(path).unwrap();
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
        job: None,
    };
    let result = RunResult::default()
        .with_metric("test", "top1", 50.0)
        .with_metric("test", "top5", 75.0);
    timed("claim + finish 4,000 runs (8,000 transactions)", || {
        for node in plan.nodes.iter().step_by(2).take(4_000) {
            store.claim(&node.id, &claim).unwrap().unwrap();
            store.finish(&node.id, "bench:1", &result).unwrap();
        }
    });
    claims_by_workers(url, &plan, 16);
    timed("status: expand + statuses + classify (repro status NAME)", || {
        let m = load_manifest(path).unwrap();
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
                ..repro::result::EpochMetrics::default()
            };
            store.record_epoch(run, &metrics).unwrap();
        }
    });
}

/// `workers` threads, each with its own store connection as separate processes would have,
/// race to claim and finish the 1,000 runs 4,000..5,000 of the even ones (each tries them all,
/// starting at a different place): claims per second, and that each run was won once.
fn claims_by_workers(url: &str, plan: &repro::plan::Plan, workers: usize) {
    let ids: Vec<&str> = plan
        .nodes
        .iter()
        .step_by(2)
        .skip(4_000)
        .take(1_000)
        .map(|n| n.id.as_str())
        .collect();
    let start = Instant::now();
    let won: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let ids = &ids;
                s.spawn(move || {
                    let store = Store::open(url).unwrap();
                    let prov = repro::store::Provenance::default();
                    let owner = format!("bench:w{w}");
                    let claim = Claim {
                        owner: &owner,
                        device: "cpu",
                        provenance: &prov,
                        job: None,
                    };
                    let result = RunResult::default().with_metric("test", "top1", 50.0);
                    let offset = w * ids.len() / workers;
                    let mut won = 0;
                    for k in 0..ids.len() {
                        let id = ids[(offset + k) % ids.len()];
                        if store.claim(id, &claim).unwrap().is_some() {
                            store.finish(id, &owner, &result).unwrap();
                            won += 1;
                        }
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(won, ids.len(), "each run claimed exactly once");
    println!(
        "{:<58} {:>8.3} s  ({:.0} claims/s, each with its finish; {} claim attempts)",
        format!("{workers} workers claim + finish 1,000 runs"),
        secs,
        won as f64 / secs,
        workers * ids.len()
    );
}
