//! Store-level checks that need no binary: atomic claims, crash-safe completion.

use repro::config::{load_manifest, Overrides};
use repro::exec::provenance::{hostname, staleness, Stale};
use repro::plan::{expand, Plan};
use repro::result::RunResult;
use repro::result::RunStatus;
use repro::store::{copied_columns, copied_tables, Claim, Holder, Provenance, Store};

use crate::common::{code, stderr, stdout, store_urls, Sandbox};

fn setup() -> (crate::common::TempDir, Plan) {
    let dir = crate::common::scratch();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, "id: m\ntitle: t\nstages:\n  a: {}\n  b: { needs: [a] }\n").unwrap();
    let plan = expand(&load_manifest(&path).unwrap(), "paper", &Overrides::default()).unwrap();
    (dir, plan)
}

#[test]
fn exactly_one_of_many_claimants_wins() {
    let (dir, plan) = setup();
    for db in store_urls(dir.path()) {
        one_of_many_claimants_wins(&db, &plan);
    }
}

fn one_of_many_claimants_wins(db: &str, plan: &Plan) {
    Store::open(db).unwrap().register_plan(plan).unwrap();
    let id = plan.nodes[0].id.clone();
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let id = id.clone();
                s.spawn(move || {
                    // Separate pools, as separate processes would have.
                    let store = Store::open(db).unwrap();
                    let prov = Provenance::default();
                    let owner = format!("t:{i}");
                    let claim = Claim {
                        owner: &owner,
                        device: "cpu",
                        provenance: &prov,
                        job: None,
                    };
                    usize::from(store.claim(&id, &claim).unwrap().is_some())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1, "{db}");
}

#[test]
fn a_child_cannot_be_claimed_before_its_parent_is_done() {
    let (dir, plan) = setup();
    for db in store_urls(dir.path()) {
        claims_follow_the_graph(&db, &plan);
    }
}

fn claims_follow_the_graph(db: &str, plan: &Plan) {
    let store = Store::open(db).unwrap();
    store.register_plan(plan).unwrap();
    let prov = Provenance::default();
    let claim = Claim {
        owner: "h:1",
        device: "cpu",
        provenance: &prov,
        job: None,
    };
    let (parent, child) = (&plan.nodes[0].id, &plan.nodes[1].id);
    assert_eq!(store.claim(child, &claim).unwrap(), None);
    assert_eq!(store.claim(parent, &claim).unwrap(), Some(1));
    // Another owner cannot record over this one's claim.
    assert!(store.finish(parent, "h:2", &RunResult::default()).is_err());
    store
        .finish(
            parent,
            "h:1",
            &RunResult::default().with_metric("test", "top1", 1.0),
        )
        .unwrap();
    assert_eq!(store.claim(child, &claim).unwrap(), Some(1));
    // A dead owner's run is recovered as interrupted and can be claimed again.
    assert_eq!(store.recover_stale(|h| h.owner == "h:1").unwrap(), 1);
    let st = store.statuses(&[child.as_str()]).unwrap();
    assert_eq!(st[child.as_str()], RunStatus::Interrupted);
    assert_eq!(store.claim(child, &claim).unwrap(), Some(2));
    // On another host only the heartbeat tells: a live owner's run is left alone, a silent
    // one's is taken back.
    let holders = store.holders().unwrap();
    assert_eq!(holders.len(), 1);
    assert!(holders[0].silent_for_s() < 60.0, "{holders:?}");
    assert_eq!(staleness(&holders[0], 60.0), None);
    assert!(matches!(staleness(&holders[0], 0.0), Some(Stale::Silent(_))));
    assert_eq!(store.recover_stale(|h| staleness(h, 60.0).is_some()).unwrap(), 0);
    assert_eq!(store.recover_stale(|h| staleness(h, 0.0).is_some()).unwrap(), 1);
    // On this host a vanished process is known at once, however fresh its heartbeat.
    let gone = Holder {
        owner: format!("{}:{}", hostname(), u32::MAX),
        ..holders[0].clone()
    };
    assert_eq!(staleness(&gone, 1e9), Some(Stale::Gone(u32::MAX)));
}

#[test]
fn copy_carries_every_column_of_every_table() {
    let dir = crate::common::scratch();
    for db in store_urls(dir.path()) {
        let store = Store::open(&db).unwrap();
        for table in copied_tables() {
            let mut stored = store.columns_of(table).unwrap();
            // PostgreSQL's stand-in for SQLite's implicit rowid is not data.
            stored.retain(|c| c != "rowid");
            assert_eq!(stored, copied_columns(table), "{db}: {table}");
        }
    }
}

/// Every run as `repro show --json` prints it, and the rendered table.
fn everything_shown(sb: &Sandbox, db: &str) -> (Vec<serde_json::Value>, String) {
    let listed = sb.run(&["status", "t", "--json", "--db", db]);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let runs = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let out = sb.run(&["show", r["run"].as_str().unwrap(), "--json", "--db", db]);
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            serde_json::from_str(&stdout(&out)).unwrap()
        })
        .collect();
    let out = sb.run(&["render", "t", "--db", db, "--format", "csv"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let table = std::fs::read_to_string(sb.path("results/tables/t.csv")).unwrap();
    (runs, table)
}

#[test]
fn a_store_copied_to_postgresql_and_back_shows_the_same_runs() {
    let Some(pg) = crate::common::postgres_db() else {
        return;
    };
    let sb = Sandbox::default();
    sb.manifest(
        "t.yaml",
        "id: t\ntitle: t\nbase: { model: { arch: resnet8 }, fake: { epochs: 2 } }\n\
         stages:\n  pre: {}\n  fine: { needs: [pre] }\n\
         axes:\n  act: { key: model.activation, values: [relu, aglu] }\n\
         table: { rows: act, columns: [{ metric: top1 }] }\n",
    );
    let out = sb.run(&["run", "t", "--db", "first.sqlite"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let original = everything_shown(&sb, "first.sqlite");
    assert_eq!(original.0.len(), 4);
    for (from, to) in [("first.sqlite", pg.as_str()), (pg.as_str(), "back.sqlite")] {
        let out = sb.run(&["db", "copy", from, to, "--json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(summary["copied"], 4, "{summary}");
        assert_eq!(everything_shown(&sb, to), original, "{from} -> {to}");
    }
    // Copying again adds nothing and keeps what is there.
    let out = sb.run(&["db", "copy", "first.sqlite", &pg, "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (summary["copied"].as_u64(), summary["kept"].as_u64()),
        (Some(0), Some(4))
    );
    // The runs are done in the copy: running the manifest there trains nothing.
    let out = sb.run(&["run", "t", "--db", &pg, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("\"ran\":0"), "{}", stdout(&out));
}
