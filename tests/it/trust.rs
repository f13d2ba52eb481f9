//! Defects found by trying the tool as a new user (issue 13), each through the binary: the
//! commands refuse bad input with status 2 and a message naming it, before anything is stored.

use std::process::Output;

use crate::common::{code, stderr, stdout, Sandbox};

const FAKE: &str = "title: t\nbase: { model: { arch: resnet8 }, fake: { epochs: 1 } }\n\
                    axes:\n  act: { key: model.activation, values: [relu, aglu] }\n\
                    table: { rows: act, columns: [{ metric: top1 }] }\n";

#[test]
fn two_manifests_with_one_id_are_refused_naming_both_files() {
    let sb = Sandbox::default();
    sb.manifest("first.yaml", &format!("id: same\n{FAKE}"));
    sb.manifest("second.yaml", &format!("id: same\n{FAKE}"));
    let out = sb.run(&["run", "same"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("first.yaml") && err.contains("second.yaml"), "{err}");
    assert!(!sb.path("results/runs").exists(), "nothing trained");
    let listed = sb.run(&["list"]);
    assert!(
        stdout(&listed).contains("INVALID") && stdout(&listed).contains("also declared by"),
        "{}",
        stdout(&listed)
    );
}

#[test]
fn rm_rejects_an_unknown_manifest_or_status() {
    let sb = Sandbox::default();
    sb.manifest("t.yaml", &format!("id: t\n{FAKE}"));
    assert_eq!(code(&sb.run(&["run", "t"])), 0);
    let out = sb.run(&["rm", "--manifest", "table99", "--yes"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no runs of manifest `table99`"),
        "{}",
        stderr(&out)
    );
    let out = sb.run(&["rm", "--manifest", "t", "--profile", "smoke", "--yes"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("it has: paper"), "{}", stderr(&out));
    let out = sb.run(&["rm", "--manifest", "t", "--status", "fialed", "--yes"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown run status `fialed`"),
        "{}",
        stderr(&out)
    );
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&sb.run(&["status", "t", "--json"]))).unwrap();
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "nothing was removed");
    assert!(runs.iter().all(|r| r["state"] == "done"), "{runs:?}");
}

#[test]
fn list_without_a_manifest_folder_says_so() {
    let sb = Sandbox::default();
    let out = sb.run(&["list", "--experiments", "nowhere"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no manifest folder nowhere"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn devices_are_checked_before_anything_is_stored() {
    let sb = Sandbox::default();
    sb.manifest("t.yaml", &format!("id: t\n{FAKE}"));
    for (device, says) in [("tpu", "unknown device 'tpu'"), ("cuda:0", "cuda:0")] {
        let out = sb.run(&["run", "t", "--device", device]);
        assert_eq!(code(&out), 2, "{device}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{device}: {}", stderr(&out));
    }
    assert!(!sb.path("results").exists(), "no store, no run folder");
}

#[test]
fn a_run_config_that_cannot_train_is_refused_at_plan_time() {
    let sb = Sandbox::default();
    for (key, value) in [("epochs", "0"), ("batch_size", "0"), ("lr", "-1")] {
        sb.manifest(
            "bad.yaml",
            &format!(
                "id: bad\ntitle: t\nbase: {{ model: {{ arch: resnet8, num_classes: 10 }}, \
                 data: {{ dataset: synthetic_lt, classes: 10 }}, train: {{ {key}: {value} }} }}\n"
            ),
        );
        let out = sb.run(&["plan", "bad"]);
        assert_eq!(code(&out), 2, "{key}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("train.{key}")),
            "{key}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn plan_prints_costs_as_plain_numbers() {
    let sb = Sandbox::default();
    sb.manifest(
        "ok.yaml",
        "id: ok\ntitle: t\nbase: { model: { arch: resnet8, num_classes: 10 }, \
         data: { dataset: synthetic_lt, classes: 10, train_per_class_max: 100 }, train: { epochs: 3 } }\n",
    );
    let out = sb.run(&["plan", "ok"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("image passes"))
        .expect("a cost line");
    assert!(!line.contains("e2") && !line.contains("e3"), "{line}");
    assert!(line.contains("3 epochs"), "{line}");
}

#[test]
fn a_figure_manifest_is_captioned_as_a_figure() {
    let sb = Sandbox::default();
    sb.manifest(
        "f.yaml",
        &format!("id: f\npaper: {{ table: \"Figure 1\" }}\n{FAKE}"),
    );
    let out = sb.run(&["run", "f"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("(paper Figure 1)"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("Table Figure"), "{}", stdout(&out));
}

#[test]
fn verify_refuses_fixtures_that_check_nothing_and_says_each_error_once() {
    let sb = Sandbox::default();
    let src = std::fs::canonicalize("tests/fixtures/models/se_resnet32_sigmoid_cosine.json").unwrap();
    let weights =
        std::fs::canonicalize("tests/fixtures/models/se_resnet32_sigmoid_cosine.safetensors").unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
    let variant = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut f = fixture.clone();
        f["weights"] = serde_json::json!(weights);
        f.as_object_mut().unwrap().remove("weights_pth");
        edit(&mut f);
        let path = sb.path(name);
        std::fs::write(&path, f.to_string()).unwrap();
        path
    };
    let empty = variant("empty.json", &|f| {
        f["input"] = serde_json::json!([]);
        f["input_shape"] = serde_json::json!([0, 3, 32, 32]);
        f["logits"] = serde_json::json!([]);
        f["logits_shape"] = serde_json::json!([0, 10]);
    });
    let negative = variant("negative.json", &|f| {
        f["tolerance"]["max_abs"] = serde_json::json!(-1.0)
    });
    for (path, says) in [(&empty, "empty batch"), (&negative, "must be a number ≥ 0")] {
        let out = sb.run(&["verify", path.to_str().unwrap()]);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        assert_eq!(
            stderr(&out).matches(says).count(),
            1,
            "said once: {}",
            stderr(&out)
        );
        let json = sb.run(&["verify", "--json", path.to_str().unwrap()]);
        assert_eq!(code(&json), 2);
        let line: serde_json::Value = serde_json::from_str(stdout(&json).trim()).expect("one JSON object");
        assert_eq!(line["passed"], false);
        assert!(line["error"].as_str().unwrap().contains(says));
    }
}

#[test]
fn read_commands_never_create_a_store_and_unknown_urls_are_refused() {
    let sb = Sandbox::default();
    sb.manifest("t.yaml", &format!("id: t\n{FAKE}"));
    let out = sb.run(&["status", "t", "--db", "mysql://localhost/x"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unsupported database URL"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.path("mysql:").exists());
    // A PostgreSQL server that is not there: its own error at once (not a pool timeout), naming
    // the URL but not its password.
    let started = std::time::Instant::now();
    let out = sb.run(&["status", "--db", "postgres://repro:secret@127.0.0.1:1/x"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("results store postgres://repro:***@127.0.0.1:1/x"),
        "{err}"
    );
    assert!(!err.contains("secret") && !err.contains("timed out"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let out = sb.run(&["status", "--db", "typo.sqlite"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no results store at typo.sqlite"),
        "{}",
        stderr(&out)
    );
    assert!(!sb.path("typo.sqlite").exists());
    for args in [&["plan", "t"][..], &["status", "t"], &["list"]] {
        let out = sb.run(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    }
    assert!(
        !sb.path("results").exists(),
        "plan, status and list wrote nothing"
    );
}

/// What one run recorded, as `repro show --json` prints it.
fn shown(sb: &Sandbox, run: &str) -> serde_json::Value {
    serde_json::from_str(&stdout(&sb.run(&["show", run, "--json"]))).expect("show --json")
}

#[test]
fn a_removed_run_is_trained_again_from_the_start() {
    let sb = Sandbox::default();
    sb.manifest(
        "t.yaml",
        "id: t\ntitle: t\nbase: { model: { arch: resnet8 }, fake: { epochs: 2 } }\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu] }\n",
    );
    assert_eq!(code(&sb.run(&["run", "t"])), 0);
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&sb.run(&["status", "t", "--json"]))).unwrap();
    let ids: Vec<String> = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap().to_string())
        .collect();
    let folder = |id: &str| sb.path("results/runs").join(id);

    // rm deletes the run's folder with its rows.
    assert!(folder(&ids[0]).join("fake-checkpoint.txt").is_file());
    assert_eq!(code(&sb.run(&["rm", &ids[0], "--yes"])), 0);
    assert!(!folder(&ids[0]).exists(), "the removed run's folder is gone");

    // Leftovers of a run the store no longer has (here: the folder kept aside across an rm)
    // are moved aside, never resumed from.
    let kept = sb.path("kept");
    std::fs::rename(folder(&ids[1]), &kept).unwrap();
    assert_eq!(code(&sb.run(&["rm", &ids[1], "--yes"])), 0);
    std::fs::rename(&kept, folder(&ids[1])).unwrap();

    let out = sb.run(&["run", "t"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("moved to"), "{}", stderr(&out));
    for id in &ids {
        let result = &shown(&sb, id)["result"];
        assert_eq!(
            result["metrics"]["fake"]["resumed_from_epoch"], 0.0,
            "{id} trained from the start"
        );
        assert_eq!(result["epochs"].as_array().unwrap().len(), 2, "{id}");
    }
    let aside = std::fs::read_dir(sb.path("results/runs"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{}.orphaned-", ids[1]))
        })
        .count();
    assert_eq!(aside, 1, "the leftovers are kept, aside");
}

#[test]
fn an_override_of_an_axis_or_the_seed_is_refused_naming_it() {
    let sb = Sandbox::default();
    sb.manifest("t.yaml", &format!("id: t\nseeds: [0]\n{FAKE}"));
    for set in ["model.activation=relu", "model={activation: relu}", "seed=5"] {
        let out = sb.run(&["run", "t", "--set", set]);
        assert_eq!(code(&out), 2, "{set}: {}", stderr(&out));
        let err = stderr(&out);
        let names = if set.starts_with("seed") {
            "seeds (0)"
        } else {
            "axis `act`"
        };
        assert!(err.contains(names) && err.contains(set), "{set}: {err}");
    }
    assert!(!sb.path("results").exists(), "nothing stored");
    let ok = sb.run(&["plan", "t", "--set", "train.lr=0.05"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
}

#[test]
fn a_corrupt_store_is_named_once_with_its_cause_once() {
    let sb = Sandbox::default();
    if !sb.sqlite_default() {
        return;
    }
    sb.manifest("t.yaml", &format!("id: t\n{FAKE}"));
    std::fs::create_dir_all(sb.path("results")).unwrap();
    std::fs::write(sb.path("results/repro.sqlite"), "not a database ".repeat(300)).unwrap();
    for args in [&["status"][..], &["status", "t"], &["run", "t"]] {
        let out = sb.run(args);
        assert_ne!(code(&out), 0, "{args:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches("results/repro.sqlite").count(), 1, "{args:?}: {err}");
        assert_eq!(
            err.matches("file is not a database").count(),
            1,
            "{args:?}: {err}"
        );
    }
}

/// Runs `repro` as an unprivileged user when the tests run as root (root ignores file modes).
fn as_unprivileged(sb: &Sandbox, args: &[&str]) -> Output {
    if unsafe { libc::geteuid() } != 0 {
        return sb.run(args);
    }
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_repro"))
        .args(args)
        .current_dir(sb.path("."));
    cmd.output().expect("setpriv (util-linux) runs")
}

#[test]
fn a_read_only_store_can_be_read() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::default();
    if !sb.sqlite_default() {
        return;
    }
    sb.manifest("t.yaml", &format!("id: t\n{FAKE}"));
    assert_eq!(code(&sb.run(&["run", "t"])), 0);
    let mode = |path: &str, mode: u32| {
        std::fs::set_permissions(sb.path(path), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(".", 0o755);
    mode("results/repro.sqlite", 0o444);
    mode("results", 0o555);
    for args in [&["status"][..], &["status", "t"], &["list"]] {
        let out = as_unprivileged(&sb, args);
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("2/2") || stdout(&out).contains("done"),
            "{args:?}: {}",
            stdout(&out)
        );
    }
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&as_unprivileged(&sb, &["status", "t", "--json"]))).unwrap();
    let id = status["runs"][0]["run"].as_str().unwrap();
    let out = as_unprivileged(&sb, &["show", id]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    mode("results", 0o755);
}

#[test]
fn a_yaml_error_has_one_line_number_the_one_of_the_bad_key() {
    let sb = Sandbox::default();
    // `colour` also appears earlier, in a comment; the error is on line 6.
    sb.manifest(
        "bad.yaml",
        "id: bad\ntitle: t\n# colour is not a key\nbase: { fake: { epochs: 1 } }\n\
         table:\n  colour: red\n  rows: act\n",
    );
    let out = sb.run(&["plan", "bad"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.yaml:6: "), "{err}");
    assert!(!err.contains("at line"), "{err}");
}

#[test]
fn list_marks_a_manifest_with_an_unusable_axis_value_invalid() {
    let sb = Sandbox::default();
    sb.manifest(
        "t.yaml",
        &format!("id: t\n{FAKE}").replace("[relu, aglu]", "[relu, banana]"),
    );
    let out = sb.run(&["list"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line = stdout(&out);
    assert!(line.contains("INVALID") && line.contains("banana"), "{line}");
}

#[test]
fn status_shows_the_profile_that_ran_and_final_metrics() {
    let sb = Sandbox::default();
    sb.manifest(
        "t.yaml",
        &format!("id: t\n{FAKE}profiles:\n  smoke: {{ fake: {{ epochs: 2 }} }}\n"),
    );
    assert_eq!(code(&sb.run(&["run", "t", "--profile", "smoke"])), 0);
    let out = sb.run(&["status", "t"]);
    let text = stdout(&out);
    assert!(text.starts_with("t (profile smoke): 2 runs"), "{text}");
    assert_eq!(text.matches("  top1 ").count(), 2, "{text}");
    assert_eq!(code(&sb.run(&["run", "t"])), 0);
    let text = stdout(&sb.run(&["status", "t"]));
    assert!(text.starts_with("t (profile paper)"), "the latest: {text}");
    assert!(text.contains("also in the store: profile smoke"), "{text}");
}
