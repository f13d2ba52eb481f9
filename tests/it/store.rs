//! Store-level checks that need no binary: atomic claims, crash-safe completion.

use repro::config::{load_manifest, Overrides};
use repro::exec::provenance::{hostname, staleness, Stale};
use repro::plan::{expand, Plan};
use repro::result::RunResult;
use repro::result::RunStatus;
use repro::store::{Claim, Holder, Provenance, Store};

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
    let db = dir.path().join("s.sqlite");
    Store::open(db.to_str().unwrap())
        .unwrap()
        .register_plan(&plan)
        .unwrap();
    let id = plan.nodes[0].id.clone();
    let wins: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (db, id) = (db.clone(), id.clone());
                s.spawn(move || {
                    // Separate pools, as separate processes would have.
                    let store = Store::open(db.to_str().unwrap()).unwrap();
                    let prov = Provenance::default();
                    let owner = format!("t:{i}");
                    let claim = Claim {
                        owner: &owner,
                        device: "cpu",
                        provenance: &prov,
                    };
                    usize::from(store.claim(&id, &claim).unwrap().is_some())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
}

#[test]
fn a_child_cannot_be_claimed_before_its_parent_is_done() {
    let (dir, plan) = setup();
    let store = Store::open(dir.path().join("s.sqlite").to_str().unwrap()).unwrap();
    store.register_plan(&plan).unwrap();
    let prov = Provenance::default();
    let claim = Claim {
        owner: "h:1",
        device: "cpu",
        provenance: &prov,
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
