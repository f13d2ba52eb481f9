//! End-to-end tests through the binary, with the fake trainer (`fake:` in the run config).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{code, stderr, Sandbox};

/// What the end-to-end tests ask of a sandbox beyond running the binary.
trait E2e {
    fn spawn(&self, args: &[&str]) -> Child;
    fn json(&self, args: &[&str]) -> Value;
    fn summary(&self, manifest: &str) -> Value;
    fn status(&self, manifest: &str) -> Vec<Value>;
    fn starts(&self, run: &str) -> usize;
}

impl E2e for Sandbox {
    fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Parses the last stdout line (run --json) or the whole stdout (other --json commands).
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(&text)
            .or_else(|_| serde_json::from_str(text.lines().last().unwrap_or("")))
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}\n{}", String::from_utf8_lossy(&out.stderr)))
    }

    fn summary(&self, manifest: &str) -> Value {
        self.json(&["run", manifest, "--json"])["summary"].clone()
    }

    fn status(&self, manifest: &str) -> Vec<Value> {
        self.json(&["status", manifest, "--json"])["runs"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn starts(&self, run: &str) -> usize {
        std::fs::read_to_string(self.path("results/runs").join(run).join("fake-starts.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

/// 2 activations × 2 seeds × (pretrain → crt) = 8 runs.
fn two_stage(fake: &str) -> String {
    format!(
        "id: t2\ntitle: two stages\n\
         base: {{ model: {{ arch: resnet8 }}, fake: {fake} }}\n\
         axes:\n  act: {{ key: model.activation, values: [relu, aglu] }}\n\
         seeds: [0, 1]\n\
         stages:\n  pretrain: {{}}\n  crt: {{ needs: [pretrain], config: {{ train: {{ epochs: 1 }} }} }}\n\
         table: {{ rows: act, columns: [{{ metric: top1 }}], stage: crt }}\n"
    )
}

fn states(runs: &[Value]) -> Vec<String> {
    runs.iter()
        .map(|r| r["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn skips_done_runs() {
    let sb = Sandbox::default();
    sb.manifest("t2.yaml", &two_stage("{ epochs: 2 }"));
    let first = sb.summary("t2");
    assert_eq!(
        (first["ran"].as_u64(), first["done"].as_u64()),
        (Some(8), Some(8))
    );
    let list = sb.json(&["list", "--json"]);
    assert_eq!(list[0]["progress"]["paper"], serde_json::json!([8, 8]));
    let again = sb.summary("t2");
    assert_eq!(
        (again["ran"].as_u64(), again["done"].as_u64()),
        (Some(0), Some(8))
    );
    for r in sb.status("t2") {
        assert_eq!(sb.starts(r["run"].as_str().unwrap()), 1);
    }
}

#[test]
fn failure_blocks_dependants_and_retry_recovers() {
    let sb = Sandbox::default();
    let yaml = two_stage("{ epochs: 1 }").replace(
        "axes:\n",
        "axes:\n  mode: { keys: [fake.fail, fake.fail_attempts], values: [[null, null], [boom, 1]], labels: [ok, flaky] }\n",
    );
    let yaml = yaml.replace("rows: act", "rows: [act, mode]");
    sb.manifest("t2.yaml", &yaml);
    let out = sb.run(&["run", "t2"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let runs = sb.status("t2");
    let count = |s: &str| states(&runs).iter().filter(|x| *x == s).count();
    assert_eq!((count("done"), count("failed"), count("blocked")), (8, 4, 4));
    for r in runs.iter().filter(|r| r["state"] == "failed") {
        assert_eq!(r["labels"]["mode"], "flaky");
        assert_eq!(r["error"], "boom");
    }
    // Without --retry-failed nothing changes.
    assert_eq!(sb.summary("t2")["ran"].as_u64(), Some(0));
    // The flaky pretrain runs pass on attempt 2; their crt runs (same axis point, so also flaky)
    // then fail once, and pass on the next retry.
    let out = sb.run(&["run", "t2", "--retry-failed"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let runs = sb.status("t2");
    assert!(runs
        .iter()
        .filter(|r| r["state"] == "failed")
        .all(|r| r["stage"] == "crt"));
    let out = sb.run(&["run", "t2", "--retry-failed", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(states(&sb.status("t2")).iter().all(|s| s == "done"));
}

#[test]
fn diverged_runs_are_results_but_block_dependants() {
    let sb = Sandbox::default();
    sb.manifest("t2.yaml", &two_stage("{ epochs: 1, diverge: nan loss }"));
    let out = sb.run(&["run", "t2"]);
    assert_eq!(code(&out), 1);
    let runs = sb.status("t2");
    let count = |s: &str| states(&runs).iter().filter(|x| *x == s).count();
    assert_eq!((count("diverged"), count("blocked")), (4, 4));
}

#[test]
fn ctrl_c_interrupts_and_the_next_run_resumes() {
    let sb = Sandbox::default();
    sb.manifest("t2.yaml", &two_stage("{ epochs: 20, sleep_ms: 25 }"));
    let child = sb.spawn(&["run", "t2", "--jobs", "2"]);
    wait_for_running(&sb, "t2");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let runs = sb.status("t2");
    assert!(states(&runs).iter().any(|s| s == "to_run"));
    assert!(!states(&runs).iter().any(|s| s == "running"));
    // Per-epoch metrics of an interrupted run were recorded as they came.
    let interrupted: Vec<Value> = runs
        .iter()
        .map(|r| sb.json(&["show", r["run"].as_str().unwrap(), "--json"]))
        .filter(|d| d["status"] == "interrupted")
        .collect();
    assert!(!interrupted.is_empty());
    for d in interrupted {
        assert!(!d["result"]["epochs"].as_array().unwrap().is_empty());
    }
    assert_eq!(sb.summary("t2")["done"].as_u64(), Some(8));
    let resumed = sb
        .status("t2")
        .iter()
        .filter(|r| r["metrics"]["fake"]["resumed_from_epoch"].as_f64().unwrap_or(0.0) > 0.0)
        .count();
    assert!(resumed >= 1, "an interrupted run resumes from its checkpoint");
}

fn wait_for_running(sb: &Sandbox, manifest: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if sb.store_exists() && states(&sb.status(manifest)).iter().any(|s| s == "running") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no run started");
}

#[test]
fn two_processes_never_run_the_same_run() {
    let sb = Sandbox::default();
    sb.manifest(
        "t2.yaml",
        &two_stage("{ epochs: 3, sleep_ms: 10 }").replace("seeds: [0, 1]", "seeds: [0, 1, 2, 3]"),
    );
    // Three processes start together on a fresh database: they race through creating and
    // migrating it too.
    let children: Vec<Child> = (0..3).map(|_| sb.spawn(&["run", "t2", "--jobs", "2"])).collect();
    for child in children {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let runs = sb.status("t2");
    assert_eq!(runs.len(), 16);
    for r in &runs {
        assert_eq!(r["state"], "done");
        assert_eq!(
            sb.starts(r["run"].as_str().unwrap()),
            1,
            "run {} started twice",
            r["run"]
        );
    }
}

#[test]
fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    let sb = Sandbox::default();
    sb.manifest(
        "t2.yaml",
        &two_stage("{ epochs: 4, sleep_ms: 8 }").replace("seeds: [0, 1]", "seeds: [0, 1, 2]"),
    );
    let mut rng = Instant::now().elapsed().as_nanos() as u64 | 1;
    for _ in 0..20 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mut child = sb.spawn(&["run", "t2", "--jobs", "2"]);
        std::thread::sleep(Duration::from_millis(rng % 120));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let out = sb.run(&["run", "t2", "--jobs", "2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let runs = sb.status("t2");
    assert_eq!(runs.len(), 12);
    let all = sb.json(&["status", "--json"]);
    assert_eq!(all[0]["total"].as_u64(), Some(12), "no stray runs");
    let mut restarted = 0;
    for r in &runs {
        assert_eq!(r["state"], "done");
        let id = r["run"].as_str().unwrap();
        let d = sb.json(&["show", id, "--json"]);
        restarted += usize::from(d["attempt"].as_u64().unwrap() > 1);
        let result = &d["result"];
        let finals: usize = result["metrics"]
            .as_object()
            .unwrap()
            .values()
            .map(|split| split.as_object().unwrap().len())
            .sum();
        let epochs: Vec<u64> = result["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["epoch"].as_u64().unwrap())
            .collect();
        assert_eq!(finals, 3, "final metrics of {id}");
        assert_eq!(epochs, [1, 2, 3, 4], "one entry per epoch for {id}");
        assert_eq!(result["classes"].as_array().unwrap().len(), 3);
        assert_eq!(result["artifacts"].as_array().unwrap().len(), 1);
        assert!(d["attempt"].as_u64().unwrap() >= 1);
    }
    assert!(restarted > 0, "some kill landed while a run was running");
}

#[test]
fn invalid_manifests_exit_2_and_write_nothing() {
    let sb = Sandbox::default();
    let cases = [
        ("unknown_key", "id: a\ntitle: t\nbase:\n  model: { arch: resnet8 }\n  trian: { epochs: 1 }\n", "5"),
        ("bad_type", "id: a\ntitle: t\nbase:\n  model:\n    activation: banana\n", "banana"),
        ("axis_target", "id: a\ntitle: t\naxes:\n  x: { key: model.nope, values: [1] }\n", "model.nope"),
        ("missing_stage", "id: a\ntitle: t\nstages:\n  crt: { needs: [pretrain] }\n", "pretrain"),
        ("cycle", "id: a\ntitle: t\nstages:\n  a: { needs: [b] }\n  b: { needs: [a] }\n", "cycle"),
        (
            "no_runs",
            "id: a\ntitle: t\naxes:\n  x: { key: model.activation, values: [relu] }\ntable:\n  rows: x\n  columns: [{ metric: top1 }]\n  reported: { gelu: [1.0] }\n",
            "maps to no runs",
        ),
    ];
    for (name, yaml, needle) in cases {
        sb.manifest(&format!("{name}.yaml"), yaml);
        let out = sb.run(&["run", name]);
        assert_eq!(code(&out), 2, "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{name}.yaml")) && err.contains(needle),
            "{name}: {err}"
        );
    }
    assert!(sb
        .run(&["run", "unknown_key"])
        .stderr
        .starts_with(b"error: experiments/unknown_key.yaml:5:"));
    assert!(!sb.path("results").exists(), "nothing written to the store");
    assert_eq!(code(&sb.run(&["run", "nonexistent"])), 2);
    assert_eq!(code(&sb.run(&["run", "--bogus-flag"])), 2);
}

#[test]
fn plan_counts_and_costs_what_is_left() {
    let sb = Sandbox::default();
    sb.manifest(
        "p.yaml",
        "id: p\ntitle: t\nbase: { model: { num_classes: 10 }, data: { dataset: synthetic_lt, classes: 10, imbalance: 1, train_per_class_max: 100 }, train: { epochs: 5 } }\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu] }\nseeds: [0, 1, 2]\n\
         stages:\n  pre: {}\n  ft: { needs: [pre], config: { train: { epochs: 2, schedule: { warmup_epochs: 1 } } } }\n",
    );
    let plan = sb.json(&["plan", "p", "--json"]);
    assert_eq!(plan["runs"], 12);
    assert_eq!(plan["stages"][0]["stage"], "pre");
    assert_eq!(plan["stages"][1]["to_run"], 6);
    assert_eq!(plan["cost"]["epochs"], 6 * 5 + 6 * 2);
    assert_eq!(plan["cost"]["image_passes"], (6 * 5 + 6 * 2) * 1000);
    assert!(!sb.path("results/runs").exists(), "a dry run trains nothing");
}

#[test]
fn unsupported_manifests_plan_but_do_not_run() {
    let sb = Sandbox::default();
    sb.manifest("u.yaml", "id: u\ntitle: t\nunsupported: needs iNaturalist\n");
    assert_eq!(code(&sb.run(&["plan", "u"])), 0);
    let out = sb.run(&["run", "u"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("needs iNaturalist"));
}

#[test]
fn layering_precedence_and_explain() {
    let sb = Sandbox::default();
    sb.manifest(
        "l.yaml",
        "id: l\ntitle: t\nbase: { train: { epochs: 5, lr: 0.1 } }\nprofiles:\n  smoke: { train: { epochs: 2, schedule: { warmup_epochs: 1 } }, seeds: [7] }\n",
    );
    let explain = |extra: &[&str], env: Option<(&str, &str)>| {
        let mut args = vec!["config", "l", "--profile", "smoke", "--explain", "train.epochs"];
        args.extend_from_slice(extra);
        let mut c = sb.cmd(&args);
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    assert!(explain(&[], None).contains("train.epochs = 2  (set by experiments/l.yaml: profiles.smoke)"));
    let env = Some(("REPRO_TRAIN__EPOCHS", "3"));
    assert!(explain(&[], env).contains("= 3  (set by environment variable REPRO_TRAIN__EPOCHS)"));
    assert!(explain(&["--set", "train.epochs=4"], env).contains("= 4  (set by --set train.epochs=4)"));
    let cfg = sb.json(&["config", "l", "--profile", "smoke", "--json"]);
    assert_eq!(cfg[0]["config"]["seed"], 7);
    assert_eq!(cfg[0]["config"]["train"]["lr"], 0.1);
    assert_eq!(code(&sb.run(&["config", "l", "--profile", "nope"])), 2);
    assert_eq!(
        code(&sb.run(&["config", "l", "--set", "model.activation=banana"])),
        2
    );
}

#[test]
fn identical_runs_from_two_manifests_are_one_run() {
    let sb = Sandbox::default();
    let m = |id: &str, acts: &str| {
        format!("id: {id}\ntitle: t\nbase: {{ fake: {{ epochs: 1 }} }}\naxes:\n  act: {{ key: model.activation, values: [{acts}] }}\n")
    };
    sb.manifest("a.yaml", &m("a", "relu, aglu"));
    sb.manifest("b.yaml", &m("b", "aglu, gelu"));
    assert_eq!(sb.summary("a")["ran"].as_u64(), Some(2));
    let b = sb.summary("b");
    assert_eq!((b["ran"].as_u64(), b["done"].as_u64()), (Some(1), Some(2)));
    let plan = sb.json(&["plan", "b", "--json"]);
    assert_eq!(plan["stages"][0]["done"].as_u64(), Some(2));
}

#[test]
fn rm_needs_confirmation_and_removes_dependants() {
    let sb = Sandbox::default();
    sb.manifest("t2.yaml", &two_stage("{ epochs: 1 }"));
    sb.summary("t2");
    let runs = sb.status("t2");
    let pretrain = runs.iter().find(|r| r["stage"] == "pretrain").unwrap()["run"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        code(&sb.run(&["rm", &pretrain])),
        2,
        "no terminal, no --yes: refuse"
    );
    let out = sb.run(&["rm", &pretrain[..8], "--yes"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 2 runs"));
    assert_eq!(sb.summary("t2")["ran"].as_u64(), Some(2));
    let out = sb.run(&["rm", "--manifest", "t2", "--yes"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed 8 runs"));
}

/// `repro rm` of a run a sweep has yet to start once made the sweep wait for it forever: the
/// claim found no row and read that as "another process has it".
#[test]
fn removing_a_pending_run_during_a_sweep_does_not_hang_it() {
    let sb = Sandbox::default();
    sb.manifest(
        "r.yaml",
        "id: r\ntitle: t\nbase: { model: { arch: resnet8 }, fake: { epochs: 1, sleep_ms: 1500 } }\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu] }\n",
    );
    let mut sweep = sb.spawn(&["run", "r", "--jobs", "1"]);
    wait_for_running(&sb, "r");
    let runs = sb.status("r");
    let pending = runs
        .iter()
        .find(|r| r["state"] == "to_run")
        .expect("one run still to run")["run"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(code(&sb.run(&["rm", &pending, "--yes"])), 0);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = sweep.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = sweep.kill();
            panic!("the sweep still waits 30 s after the rm");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert_eq!(
        states(&sb.status("r")),
        ["done", "done"],
        "the removed run ran again"
    );
}

/// SIGTERM (from `timeout`, Slurm, Docker, systemd) stops a sweep like Ctrl-C: runs marked
/// interrupted, never left "running", and the exit status says which signal (128 + 15).
#[test]
fn sigterm_interrupts_like_ctrl_c_and_exits_143() {
    let sb = Sandbox::default();
    sb.manifest("t3.yaml", &two_stage("{ epochs: 20, sleep_ms: 25 }"));
    let child = sb
        .cmd(&["run", "t3", "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_running(&sb, "t3");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("run the same command again to resume"));
    let runs = sb.status("t3");
    assert!(!states(&runs).iter().any(|s| s == "running"), "{runs:?}");
    assert!(states(&runs).iter().any(|s| s == "to_run"));
}

/// `timeout` and a shell's Ctrl-C signal the process and then its process group: one request,
/// delivered twice. It must still checkpoint and mark runs interrupted, not exit at once.
#[test]
fn a_signal_delivered_twice_at_once_is_one_request() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::default();
    sb.manifest("t4.yaml", &two_stage("{ epochs: 20, sleep_ms: 25 }"));
    let child = sb
        .cmd(&["run", "t4", "--jobs", "2"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_running(&sb, "t4");
    let pid = child.id() as i32;
    // SAFETY: plain kill(2) calls on our own child and its process group.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
        std::thread::sleep(Duration::from_millis(20));
        libc::kill(-pid, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("run the same command again to resume"), "{err}");
    let runs = sb.status("t4");
    assert!(!states(&runs).iter().any(|s| s == "running"), "{runs:?}");
}
