//! The Slurm executor against a real Slurm cluster (`SLURM_CONF` of a running one: `.ci/run`
//! starts a one-node cluster with scripts/cluster/slurm.sh) and, when the tests have one, a
//! real PostgreSQL store (`REPRO_TEST_POSTGRES`). Without a cluster these tests say so and pass.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{code, postgres_db, stderr, stdout, Sandbox};

/// Whether a Slurm cluster is there to submit to.
fn slurm() -> bool {
    let conf = std::env::var_os("SLURM_CONF").filter(|c| std::path::Path::new(c).is_file());
    let ready = conf.is_some() && crate::common::which("sbatch").is_some();
    if !ready {
        eprintln!("note: no Slurm cluster (SLURM_CONF of a running one, sbatch on PATH): Slurm test skipped");
    }
    ready
}

/// The store a cluster test uses: PostgreSQL when the tests have a server, else a SQLite file
/// (safe on a one-node cluster).
fn store(sb: &Sandbox) -> String {
    postgres_db().unwrap_or_else(|| sb.path("results/repro.sqlite").display().to_string())
}

/// A fake-trained manifest: `pre` then `fine` for each activation, epochs of `sleep_ms`.
fn staged(id: &str, acts: &str, epochs: u32, sleep_ms: u32) -> String {
    format!(
        "id: {id}\ntitle: t\nbase: {{ model: {{ arch: resnet8 }}, fake: {{ epochs: {epochs}, sleep_ms: {sleep_ms} }} }}\n\
         stages:\n  pre: {{}}\n  fine: {{ needs: [pre] }}\n\
         axes:\n  act: {{ key: model.activation, values: [{acts}] }}\n\
         table: {{ rows: act, columns: [{{ metric: top1 }}] }}\n"
    )
}

fn submit(sb: &Sandbox, name: &str, db: &str) -> Value {
    let out = sb.run(&["run", name, "--executor", "slurm", "--db", db, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("the submission as JSON")
}

fn status(sb: &Sandbox, name: &str, db: &str) -> Vec<Value> {
    let out = sb.run(&["status", name, "--db", db, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["runs"].as_array().unwrap().clone()
}

/// Polls `status` until `done(runs)` or the time is up (then fails, showing the runs).
fn wait_for(sb: &Sandbox, name: &str, db: &str, secs: u64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let runs = status(sb, name, db);
        if done(&runs) {
            return runs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "still waiting after {secs} s: {runs:#?}\n{}",
            Command::new("squeue")
                .output()
                .map(|o| stdout(&o))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn all_done(runs: &[Value]) -> bool {
    runs.iter().all(|r| r["state"] == "done")
}

fn shown(sb: &Sandbox, run: &str, db: &str) -> Value {
    let out = sb.run(&["show", run, "--json", "--db", db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn a_staged_sweep_runs_each_run_once_and_dependants_after_their_parents() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::default();
    sb.manifest("st.yaml", &staged("st", "relu, aglu, gelu", 2, 200));
    let db = store(&sb);
    let submission = submit(&sb, "st", &db);
    let jobs = submission["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "one array per stage: {submission}");
    let pre_job = jobs[0]["job"].as_str().unwrap();
    assert_eq!(jobs[1]["dependency"], format!("aftercorr:{pre_job}"));
    let runs = wait_for(&sb, "st", &db, 180, all_done);
    for r in &runs {
        let detail = shown(&sb, r["run"].as_str().unwrap(), &db);
        assert_eq!(detail["attempt"], 1, "ran once: {detail}");
        assert!(r["job"]["id"].as_str().unwrap().contains('_'), "{r}");
        for parent in detail["parents"].as_array().unwrap() {
            let parent = shown(&sb, parent.as_str().unwrap(), &db);
            let (started, parent_finished) = (
                &detail["provenance"]["started"],
                &parent["provenance"]["finished"],
            );
            assert!(
                started.as_str() >= parent_finished.as_str(),
                "{started} before {parent_finished}"
            );
        }
    }
    // Submitting again finds nothing to do.
    let again = submit(&sb, "st", &db);
    assert_eq!(again["jobs"].as_array().unwrap().len(), 0, "{again}");
    assert_eq!(again["skipped"], 6);
    // `logs` prints the run's job output.
    let out = sb.run(&["logs", runs[0]["run"].as_str().unwrap(), "--db", &db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("epoch 2/2"), "{}", stdout(&out));
}

/// A submitted single-stage manifest of slow runs, once its first run has finished an epoch:
/// (sandbox, store, that run's status line).
fn one_running(name: &str) -> (Sandbox, String, Value) {
    let sb = Sandbox::default();
    sb.manifest(
        &format!("{name}.yaml"),
        &format!(
            "id: {name}\ntitle: t\nbase: {{ model: {{ arch: resnet8 }}, fake: {{ epochs: 16, sleep_ms: 500 }} }}\n\
             axes:\n  act: {{ key: model.activation, values: [relu] }}\n\
             table: {{ rows: act, columns: [{{ metric: top1 }}] }}\n"
        ),
    );
    let db = store(&sb);
    submit(&sb, name, &db);
    let runs = wait_for(&sb, name, &db, 120, |runs| {
        runs[0]["state"] == "running" && {
            let shown = shown(&sb, runs[0]["run"].as_str().unwrap(), &db);
            shown["result"]["epochs"].as_array().is_some_and(|e| e.len() >= 2)
        }
    });
    let run = runs[0].clone();
    (sb, db, run)
}

/// The run ran twice, the second time from the first one's checkpoint.
fn assert_resumed(sb: &Sandbox, run: &str, db: &str) {
    let detail = shown(sb, run, db);
    assert_eq!(detail["attempt"], 2, "{detail}");
    let resumed = detail["result"]["metrics"]["fake"]["resumed_from_epoch"]
        .as_f64()
        .unwrap();
    assert!(resumed >= 2.0, "resumed from epoch {resumed}");
}

#[test]
fn scancel_of_a_running_task_checkpoints_requeues_and_resumes_it() {
    if !slurm() {
        return;
    }
    let (sb, db, run) = one_running("cancelled");
    let job = run["job"]["id"].as_str().unwrap();
    let out = Command::new("scancel").arg(job).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = run["run"].as_str().unwrap();
    wait_for(&sb, "cancelled", &db, 180, all_done);
    assert_resumed(&sb, id, &db);
    let log = stdout(&sb.run(&["logs", id, "--db", &db]));
    assert!(log.contains("requeueing job"), "{log}");
}

#[test]
fn a_task_whose_process_is_killed_is_taken_back_and_resumed() {
    if !slurm() {
        return;
    }
    let (sb, db, run) = one_running("killed");
    let owner = run["holder"]["owner"].as_str().unwrap();
    let pid = owner.rsplit_once(':').unwrap().1;
    let out = Command::new("kill").args(["-KILL", pid]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = run["run"].as_str().unwrap();
    wait_for(&sb, "killed", &db, 180, all_done);
    assert_resumed(&sb, id, &db);
    let log = stdout(&sb.run(&["logs", id, "--db", &db]));
    assert!(log.contains("killed by signal 9"), "{log}");
}

#[test]
fn repro_cancel_stops_a_run_for_good() {
    if !slurm() {
        return;
    }
    let (sb, db, run) = one_running("stopped");
    let out = sb.run(&["cancel", "stopped", "--db", &db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("cancelled 1 jobs of 1 runs"),
        "{}",
        stdout(&out)
    );
    let runs = wait_for(&sb, "stopped", &db, 60, |runs| runs[0]["state"] == "to_run");
    assert!(
        runs[0]["job"].is_null(),
        "the run no longer names a job: {}",
        runs[0]
    );
    // Not requeued: it stays interrupted, and the next submission resumes it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(status(&sb, "stopped", &db)[0]["state"], "to_run");
    submit(&sb, "stopped", &db);
    wait_for(&sb, "stopped", &db, 180, all_done);
    assert_resumed(&sb, run["run"].as_str().unwrap(), &db);
}

#[test]
fn killing_the_submitter_and_submitting_again_runs_each_run_once() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::default();
    sb.manifest("sk.yaml", &staged("sk", "relu, aglu", 2, 200));
    let db = store(&sb);
    let mut first = sb
        .cmd(&["run", "sk", "--executor", "slurm", "--db", &db])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    first.kill().unwrap();
    first.wait().unwrap();
    submit(&sb, "sk", &db);
    let runs = wait_for(&sb, "sk", &db, 180, all_done);
    for r in runs {
        assert_eq!(shown(&sb, r["run"].as_str().unwrap(), &db)["attempt"], 1, "{r}");
    }
}

#[test]
fn two_sweeps_submitted_at_once_on_one_store_run_shared_runs_once() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::default();
    // The aglu runs (pre and fine) are in both manifests: one run each in the store.
    sb.manifest("one.yaml", &staged("one", "relu, aglu", 2, 300));
    sb.manifest("two.yaml", &staged("two", "aglu, gelu", 2, 300));
    let db = store(&sb);
    let children: Vec<_> = ["one", "two"]
        .map(|name| {
            let mut cmd = sb.cmd(&["run", name, "--executor", "slurm", "--db", &db]);
            cmd.stdout(std::process::Stdio::null()).spawn().unwrap()
        })
        .into_iter()
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    for name in ["one", "two"] {
        for r in wait_for(&sb, name, &db, 240, all_done) {
            assert_eq!(shown(&sb, r["run"].as_str().unwrap(), &db)["attempt"], 1, "{r}");
        }
    }
}

#[test]
fn a_real_training_run_through_slurm_is_rendered() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::default();
    sb.manifest(
        "real.yaml",
        "id: real\ntitle: t\nbase: { model: { arch: resnet8, num_classes: 4 }, \
         data: { dataset: synthetic_lt, classes: 4, imbalance: 1, train_per_class_max: 16, test_per_class: 8 }, \
         train: { epochs: 1, batch_size: 16, schedule: { warmup_epochs: 0 } } }\n\
         axes:\n  act: { key: model.activation, values: [relu] }\n\
         table: { rows: act, columns: [{ metric: top1 }] }\n",
    );
    let db = store(&sb);
    submit(&sb, "real", &db);
    let runs = wait_for(&sb, "real", &db, 300, |runs| {
        runs.iter()
            .all(|r| r["state"] != "to_run" && r["state"] != "running")
    });
    assert_eq!(
        runs[0]["state"],
        "done",
        "{}",
        stdout(&sb.run(&["logs", runs[0]["run"].as_str().unwrap(), "--db", &db]))
    );
    let out = sb.run(&["render", "real", "--db", &db]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = std::fs::read_to_string(sb.path("results/tables/real.md")).unwrap();
    assert!(table.contains("| relu |"), "{table}");
}

/// Stand-ins for sbatch (appends each script to results/submitted.txt, prints job ids 1, 2, …),
/// squeue (an empty queue) and scontrol (`MaxArraySize`), in the sandbox's bin/; returns a PATH
/// that finds them first. For what a submission sends, without a cluster.
fn fake_slurm(sb: &Sandbox, max_array_size: usize) -> String {
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let results = sb.path("results");
    let sbatch = format!(
        "echo \"$*\" >> {r}/sbatch-args.txt; for a; do f=$a; done; cat \"$f\" >> {r}/submitted.txt\n\
         n=$(($(cat {r}/jobs 2>/dev/null || echo 0) + 1)); echo $n > {r}/jobs; echo $n",
        r = results.display()
    );
    for (name, body) in [
        ("sbatch", sbatch),
        ("squeue", "true".to_string()),
        (
            "scontrol",
            format!("echo 'MaxArraySize            = {max_array_size}'"),
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

#[test]
fn a_stage_larger_than_slurm_allows_goes_in_several_arrays_still_paired() {
    let sb = Sandbox::default();
    sb.manifest("wide.yaml", &staged("wide", "relu, aglu, gelu, elu", 1, 0));
    let path = fake_slurm(&sb, 3);
    let out = sb
        .cmd(&["run", "wide", "--executor", "slurm", "--json"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let submission: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let jobs: Vec<String> = submission["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| format!("{} {} {} {}", j["stage"], j["job"], j["runs"], j["dependency"]))
        .collect();
    // MaxArraySize 3: task ids 0..=2, so at most 3 runs an array, cut alike in both stages.
    assert_eq!(
        jobs,
        [
            r#""pre" "1" 3 """#,
            r#""pre" "2" 1 """#,
            r#""fine" "3" 3 "aftercorr:1""#,
            r#""fine" "4" 1 "aftercorr:2""#,
        ]
    );
    let args = std::fs::read_to_string(sb.path("results/sbatch-args.txt")).unwrap();
    assert!(
        args.contains("--array=0-2 ") && args.contains("--array=0-0 "),
        "{args}"
    );
}

#[test]
fn executor_settings_layer_user_file_manifest_profile_and_flags() {
    let sb = Sandbox::default();
    sb.manifest(
        "lay.yaml",
        "id: lay\ntitle: t\nbase: { fake: { epochs: 1 } }\n\
         executor: { partition: from-manifest, time: '1:00:00', mem: 4G }\n\
         profiles:\n  big: { executor: { time: '8:00:00' } }\n",
    );
    std::fs::write(
        sb.path("user.yaml"),
        "executor:\n  account: from-user\n  partition: from-user\n",
    )
    .unwrap();
    let path = fake_slurm(&sb, 1001);
    let out = sb
        .cmd(&[
            "run",
            "lay",
            "--profile",
            "big",
            "--executor",
            "slurm",
            "--mem",
            "16G",
            "--sbatch-arg=--constraint=a100",
        ])
        .env("REPRO_CONFIG", sb.path("user.yaml"))
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("train: job 1 (1 runs)"), "{}", stdout(&out));
    let script = std::fs::read_to_string(sb.path("results/submitted.txt")).unwrap();
    for line in [
        "#SBATCH --account=from-user",
        "#SBATCH --partition=from-manifest",
        "#SBATCH --time=8:00:00",
        "#SBATCH --mem=16G",
        "#SBATCH --constraint=a100",
        "#SBATCH --signal=B:USR1@300",
    ] {
        assert!(script.lines().any(|l| l == line), "{line} missing from\n{script}");
    }
    // An unknown key is named with the file it is in.
    std::fs::write(sb.path("user.yaml"), "executor:\n  partitoin: gpu\n").unwrap();
    let out = sb
        .cmd(&["run", "lay", "--executor", "slurm"])
        .env("REPRO_CONFIG", sb.path("user.yaml"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("user.yaml: executor") && err.contains("partitoin"),
        "{err}"
    );
}

#[test]
fn the_time_limit_warning_checkpoints_requeues_and_resumes_the_run() {
    if !slurm() {
        return;
    }
    let (sb, db, run) = one_running("warned");
    // What `--signal=B:USR1@…` sends before the time limit: USR1 to the batch step alone.
    let job = run["job"]["id"].as_str().unwrap();
    let out = Command::new("scancel")
        .args(["--batch", "--signal=USR1", job])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = run["run"].as_str().unwrap();
    wait_for(&sb, "warned", &db, 180, all_done);
    assert_resumed(&sb, id, &db);
}

#[test]
fn a_failed_run_keeps_the_end_of_its_job_output_in_the_store() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::default();
    sb.manifest(
        "bad.yaml",
        "id: bad\ntitle: t\nbase: { model: { arch: resnet8 }, fake: { epochs: 2, fail: 'the loss exploded' } }\n\
         axes:\n  act: { key: model.activation, values: [relu] }\n\
         table: { rows: act, columns: [{ metric: top1 }] }\n",
    );
    let db = store(&sb);
    submit(&sb, "bad", &db);
    let runs = wait_for(&sb, "bad", &db, 120, |runs| runs[0]["state"] == "failed");
    let run = runs[0]["run"].as_str().unwrap();
    // The supervisor stores the tail once the worker has ended, just after the run failed.
    let start = Instant::now();
    let tail = loop {
        if let Some(tail) = shown(&sb, run, &db)["provenance"]["log_tail"].as_str() {
            break tail.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no log tail stored");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        tail.contains("epoch 2/2") && tail.contains("the loss exploded"),
        "{tail}"
    );
    // Not requeued: a failure is not an interruption.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(shown(&sb, run, &db)["attempt"], 1);
}
