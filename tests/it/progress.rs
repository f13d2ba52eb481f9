//! What `run`, `sweep` and `train` say while they work (issue 13): progress without a terminal,
//! epoch events for scripts, who holds a run and how long a sweep waits for it, one line per
//! distinct failure, and one `train` per output folder.

use crate::common::{code, stderr, stdout, Sandbox};
use repro::config::{load_manifest, Overrides};
use repro::plan::expand;
use repro::store::{Claim, Provenance, Store};

const TWO_EPOCHS: &str = "id: t\ntitle: t\nbase: { model: { arch: resnet8 }, fake: { epochs: 2 } }\n\
                          axes:\n  act: { key: model.activation, values: [relu, aglu] }\n";

#[test]
fn without_a_terminal_run_prints_a_line_per_epoch_and_json_has_epoch_events() {
    let sb = Sandbox::default();
    sb.manifest("t.yaml", TWO_EPOCHS);
    let out = sb.run(&["run", "t"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("started on cpu").count(), 2, "{err}");
    assert_eq!(err.matches(": epoch 1/2  loss ").count(), 2, "{err}");
    assert_eq!(err.matches(": epoch 2/2  loss ").count(), 2, "{err}");

    sb.manifest(
        "u.yaml",
        &TWO_EPOCHS.replace("id: t", "id: u").replace("aglu", "gelu"),
    );
    let out = sb.run(&["run", "u", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    let epochs: Vec<_> = events.iter().filter(|e| e["event"] == "epoch").collect();
    assert_eq!(epochs.len(), 2, "one run is new, two epochs: {events:?}");
    assert_eq!(
        (epochs[1]["epoch"].as_u64(), epochs[1]["epochs"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(epochs[0]["run"].is_string() && epochs[0]["loss"].is_number());
    assert!(
        events.iter().all(|e| e["event"] != "batch"),
        "batches stay off scripts' output"
    );
    assert_eq!(events.last().unwrap()["event"], "summary");
}

/// Registers `t`'s runs and claims the first as process `owner` (`host:pid`) would.
fn hold_first_run(sb: &Sandbox, owner: &str) -> String {
    let m = load_manifest(&sb.path("experiments/t.yaml")).unwrap();
    let plan = expand(&m, "paper", &Overrides::default()).unwrap();
    let store = Store::open(&sb.store_url()).unwrap();
    store.register_plan(&plan).unwrap();
    let provenance = Provenance::default();
    let claim = Claim {
        owner,
        device: "cuda:0",
        provenance: &provenance,
        job: None,
    };
    store.claim(&plan.nodes[0].id, &claim).unwrap();
    plan.nodes[0].id.clone()
}

#[test]
fn status_names_who_holds_a_run_and_a_waiting_sweep_says_until_when() {
    let sb = Sandbox::default();
    sb.manifest("t.yaml", TWO_EPOCHS);
    let held = hold_first_run(&sb, "node7.cluster:4242");

    let status = stdout(&sb.run(&["status", "t"]));
    let line = status.lines().find(|l| l.contains(&held)).unwrap();
    assert!(line.contains("running"), "{status}");
    assert!(
        line.contains("held by node7.cluster:4242, heartbeat 0 s ago"),
        "{status}"
    );
    assert!(!line.contains("stale"), "{status}");

    let out = sb.run(&["run", "t", "--stale-after", "2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("waiting for 1 runs held by node7.cluster:4242 (last heartbeat"),
        "{err}"
    );
    assert!(err.contains(" UTC at the latest"), "{err}");
    assert!(
        stdout(&out).contains("2 done"),
        "taken over once silent: {}",
        stdout(&out)
    );
}

#[test]
fn a_run_held_by_a_vanished_local_process_is_marked_stale_in_status() {
    let sb = Sandbox::default();
    sb.manifest("t.yaml", TWO_EPOCHS);
    let gone = format!("{}:{}", repro::exec::provenance::hostname(), u32::MAX);
    let held = hold_first_run(&sb, &gone);
    let status = stdout(&sb.run(&["status", "t"]));
    let line = status.lines().find(|l| l.contains(&held)).unwrap();
    assert!(
        line.contains(&format!(
            "stale: process {} is gone, the next run takes it over",
            u32::MAX
        )),
        "{status}"
    );
}

#[test]
fn runs_failing_the_same_way_say_it_once() {
    let sb = Sandbox::default();
    sb.manifest(
        "t.yaml",
        "id: t\ntitle: t\n\
         base: { model: { arch: resnet8, num_classes: 10 }, \
                 data: { dataset: cifar10_lt, root: no-such-data, download: false } }\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu, gelu] }\n",
    );
    let out = sb.run(&["run", "t"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("downloading is disabled").count(), 1, "{err}");
    assert!(
        err.contains("2 more runs failed with the same error as above: "),
        "{err}"
    );
}

const TINY_RUN: &str = "model: { arch: resnet8, num_classes: 4 }\n\
    data: { dataset: synthetic_lt, classes: 4, image_size: 8, train_per_class_max: 8, test_per_class: 2 }\n\
    train: { epochs: 2, batch_size: 8, schedule: { warmup_epochs: 0 } }\n";

#[test]
fn train_json_prints_each_epoch_then_the_result() {
    let sb = Sandbox::default();
    std::fs::write(sb.path("run.yaml"), TINY_RUN).unwrap();
    let out = sb.run(&["train", "run.yaml", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["epoch", "epoch", "result"]);
    assert_eq!(events[1]["epoch"], 2);
    assert!(events[2]["result"]["metrics"]["test"]["top1"].is_number());

    let out = sb.run(&["train", "run.yaml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("epoch 2/2  loss "), "{}", stderr(&out));
}

#[test]
fn a_second_train_on_one_folder_is_refused() {
    let sb = Sandbox::default();
    std::fs::write(sb.path("run.yaml"), TINY_RUN).unwrap();
    std::fs::create_dir_all(sb.path("out")).unwrap();
    // This test process stands for the first `repro train --out out`.
    let lock = std::fs::File::create(sb.path("out/.lock")).unwrap();
    lock.try_lock().unwrap();
    let out = sb.run(&["train", "run.yaml", "--out", "out"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("out is in use by another `repro train`"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.path("out/result.json").exists());
    drop(lock);
    let out = sb.run(&["train", "run.yaml", "--out", "out"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
