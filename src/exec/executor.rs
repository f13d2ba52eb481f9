use std::collections::{HashMap, HashSet};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::provenance::{hostname, staleness};
use super::trainer::{Observer, ParentRun, RunContext, RunSpec, TrainError, Trainer};
use crate::plan::{classify, NodeState, Plan, PlanNode};
use crate::result::{EpochMetrics, RunResult, RunStatus, CHECKPOINT};
use crate::store::{Claim, Holder, JobRef, Provenance, Store, StoreError};
use crate::train::Position;

/// How often a running process tells the store its runs are alive; well under the default
/// `stale_after_s` (300 s), so a slow store write never makes a live run look abandoned.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Concurrent runs; slot i uses device `devices[i % devices.len()]`.
    pub jobs: usize,
    pub devices: Vec<String>,
    pub retry_failed: bool,
    /// Each run gets `out_root/<run id>/`.
    pub out_root: PathBuf,
    /// A run whose owner has not sent a heartbeat for this long is taken over (other hosts;
    /// dead processes on this host are detected at once).
    pub stale_after_s: f64,
    pub poll: Duration,
    /// The scheduler job this process is and the file its output goes to (a cluster task),
    /// recorded with each run it claims.
    pub job: Option<(String, String)>,
}

impl ExecOptions {
    fn job_ref(&self) -> Option<JobRef<'_>> {
        self.job.as_ref().map(|(id, log)| JobRef { id, log })
    }
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            jobs: 1,
            devices: vec!["cpu".into()],
            retry_failed: false,
            out_root: PathBuf::from("results/runs"),
            stale_after_s: 300.0,
            poll: Duration::from_millis(200),
            job: None,
        }
    }
}

/// Progress notifications, in the order they happen.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Planned {
        total: usize,
        done: usize,
        to_run: usize,
        blocked: usize,
    },
    Started {
        run: String,
        stage: String,
        device: String,
        attempt: u32,
    },
    /// Nothing can start until these runs, held by other processes, finish or go stale
    /// (`stale_after_s` without a heartbeat).
    Waiting {
        holders: Vec<Holder>,
        stale_after_s: f64,
    },
    /// A finished batch; frequent, so scripts do not get these (`--json` leaves them out).
    Batch {
        run: String,
        #[serde(flatten)]
        at: Position,
    },
    /// A finished epoch, of `epochs`.
    Epoch {
        run: String,
        stage: String,
        epochs: usize,
        #[serde(flatten)]
        metrics: EpochMetrics,
    },
    Finished {
        run: String,
        stage: String,
        status: RunStatus,
        error: Option<String>,
    },
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecSummary {
    pub done: usize,
    pub diverged: usize,
    pub failed: usize,
    pub blocked: usize,
    /// Left unfinished because of cancellation.
    pub unfinished: usize,
    pub ran: usize,
    pub cancelled: bool,
}

struct Finished {
    node: usize,
    slot: usize,
    /// Err when the outcome could not be recorded: the store is unusable, so the loop stops.
    outcome: Result<(RunStatus, Option<String>), StoreError>,
}

struct Shared<'a> {
    plan: &'a Plan,
    store: &'a Store,
    trainer: &'a dyn Trainer,
    opts: &'a ExecOptions,
    owner: String,
    provenance: &'a Provenance,
    cancel: Arc<AtomicBool>,
}

/// Runs every run of `plan` that is not done. Returns when all runs are finished or blocked,
/// or, after `cancel` is set, when the runs in flight have stopped (marked interrupted).
pub fn execute(
    plan: &Plan,
    store: &Store,
    trainer: &dyn Trainer,
    provenance: &Provenance,
    opts: &ExecOptions,
    cancel: Arc<AtomicBool>,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<ExecSummary, StoreError> {
    let ids: Vec<&str> = plan.nodes.iter().map(|n| n.id.as_str()).collect();
    store.register_plan(plan)?;
    if opts.retry_failed {
        store.reset_failed(&ids)?;
    }
    let shared = Shared {
        plan,
        store,
        trainer,
        opts,
        owner: this_process(),
        provenance,
        cancel,
    };
    let states = current_states(&shared, &ids)?;
    on_event(&planned_event(&states));
    let mut summary = ExecSummary::default();
    std::thread::scope(|scope| {
        let scheduled = schedule(scope, &shared, &ids, on_event, &mut summary);
        if scheduled.is_err() {
            // Stop the runs in flight too; the scope waits for them before returning.
            shared.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        scheduled
    })?;
    let states = current_states(&shared, &ids)?;
    fill_summary(&mut summary, &states);
    Ok(summary)
}

/// Claims the last run of `plan` and trains it in this thread, telling the store it is alive
/// meanwhile: the scheduler's path for one run, for a task a cluster scheduler started. The
/// plan holds the run after its parents; it is registered already. Returns how the run ended,
/// or None when it cannot be claimed (done, held by another process, parents not done).
pub fn execute_one(
    plan: &Plan,
    store: &Store,
    trainer: &dyn Trainer,
    provenance: &Provenance,
    opts: &ExecOptions,
    cancel: Arc<AtomicBool>,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<Option<(RunStatus, Option<String>)>, StoreError> {
    let sh = Shared {
        plan,
        store,
        trainer,
        opts,
        owner: this_process(),
        provenance,
        cancel,
    };
    let device = opts.devices.first().cloned().unwrap_or_else(|| "cpu".into());
    let node = plan.nodes.len() - 1;
    let n = &plan.nodes[node];
    let Some(attempt) = claim(&sh, node, &device, on_event)? else {
        return Ok(None);
    };
    let finished = AtomicBool::new(false);
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut last_beat = Instant::now();
            while !finished.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                if last_beat.elapsed() > HEARTBEAT_EVERY {
                    // A missed beat is retried at the next one; the run goes on meanwhile.
                    let _ = store.heartbeat(&sh.owner);
                    last_beat = Instant::now();
                }
            }
        });
        let outcome = run_one(&sh, node, attempt, &device, on_event);
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
        outcome
    })?;
    on_event(&Event::Finished {
        run: n.id.clone(),
        stage: n.stage.clone(),
        status: outcome.0,
        error: outcome.1.clone(),
    });
    Ok(Some(outcome))
}

fn planned_event(states: &[NodeState]) -> Event {
    let count = |s: NodeState| states.iter().filter(|x| **x == s).count();
    Event::Planned {
        total: states.len(),
        done: count(NodeState::Done),
        to_run: count(NodeState::ToRun) + count(NodeState::Running),
        blocked: count(NodeState::Blocked),
    }
}

fn fill_summary(summary: &mut ExecSummary, states: &[NodeState]) {
    for s in states {
        match s {
            NodeState::Done => summary.done += 1,
            NodeState::Diverged => summary.diverged += 1,
            NodeState::Failed => summary.failed += 1,
            NodeState::Blocked => summary.blocked += 1,
            NodeState::ToRun | NodeState::Running => summary.unfinished += 1,
        }
    }
}

/// Statuses from the store, after taking back runs whose process died. Runs removed from the
/// store while this plan runs (`repro rm`) are registered again: a vanished run would otherwise
/// look claimed by someone else forever.
fn refresh(sh: &Shared, ids: &[&str]) -> Result<HashMap<String, RunStatus>, StoreError> {
    sh.store
        .recover_stale(|h| staleness(h, sh.opts.stale_after_s).is_some())?;
    let statuses = sh.store.statuses(ids)?;
    let vanished = ids.iter().filter(|id| !statuses.contains_key(**id)).count();
    if vanished == 0 {
        return Ok(statuses);
    }
    eprintln!(
        "note: {vanished} runs of this plan were removed from the store while it ran; they will run again"
    );
    sh.store.register_plan(sh.plan)?;
    sh.store.statuses(ids)
}

fn current_states(sh: &Shared, ids: &[&str]) -> Result<Vec<NodeState>, StoreError> {
    Ok(classify(sh.plan, &refresh(sh, ids)?))
}

/// The scheduling loop: claim ready runs into free slots, collect finished ones, poll the store
/// for progress made by other processes. Between polls it tracks its own runs in memory, so a
/// sweep of many short runs does not re-read every status after each one.
fn schedule<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    sh: &'s Shared<'s>,
    ids: &[&str],
    on_event: &'s (dyn Fn(&Event) + Sync),
    summary: &mut ExecSummary,
) -> Result<(), StoreError> {
    let slots = sh.opts.jobs.max(1);
    let mut free: Vec<usize> = (0..slots).rev().collect();
    let mut in_flight: HashSet<usize> = HashSet::new();
    let (tx, rx) = mpsc::channel::<Finished>();
    let mut last_beat = Instant::now();
    let mut statuses = refresh(sh, ids)?;
    let mut refreshed = Instant::now();
    let mut waiting_on = Vec::new();
    loop {
        let cancelled = sh.cancel.load(std::sync::atomic::Ordering::SeqCst);
        summary.cancelled |= cancelled;
        if refreshed.elapsed() >= sh.opts.poll {
            statuses = refresh(sh, ids)?;
            refreshed = Instant::now();
        }
        let states = classify(sh.plan, &statuses);
        if !cancelled {
            for node in ready(sh.plan, &states, &in_flight) {
                let Some(&slot) = free.last() else { break };
                if start(scope, sh, node, slot, &tx, on_event)? {
                    free.pop();
                    in_flight.insert(node);
                    statuses.insert(sh.plan.nodes[node].id.clone(), RunStatus::Running);
                    summary.ran += 1;
                }
            }
        }
        if in_flight.is_empty() && (cancelled || nothing_left(&states)) {
            return Ok(());
        }
        if in_flight.is_empty() {
            tell_waiting(sh, &states, &mut waiting_on, on_event)?;
        }
        if let Ok(done) = rx.recv_timeout(sh.opts.poll) {
            in_flight.remove(&done.node);
            free.push(done.slot);
            let (status, error) = done.outcome?;
            let n = &sh.plan.nodes[done.node];
            statuses.insert(n.id.clone(), status);
            on_event(&Event::Finished {
                run: n.id.clone(),
                stage: n.stage.clone(),
                status,
                error,
            });
        }
        if last_beat.elapsed() > HEARTBEAT_EVERY {
            sh.store.heartbeat(&sh.owner)?;
            last_beat = Instant::now();
        }
    }
}

/// Says which runs held elsewhere an idle sweep waits for, each time that set changes.
fn tell_waiting(
    sh: &Shared,
    states: &[NodeState],
    waiting_on: &mut Vec<String>,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<(), StoreError> {
    let held: Vec<String> = sh
        .plan
        .nodes
        .iter()
        .zip(states)
        .filter(|(_, s)| **s == NodeState::Running)
        .map(|(n, _)| n.id.clone())
        .collect();
    if held == *waiting_on {
        return Ok(());
    }
    let holders = sh
        .store
        .holders()?
        .into_iter()
        .filter(|h| held.contains(&h.run))
        .collect();
    *waiting_on = held;
    if !waiting_on.is_empty() {
        on_event(&Event::Waiting {
            holders,
            stale_after_s: sh.opts.stale_after_s,
        });
    }
    Ok(())
}

/// Claims a run for a slot and trains it on a new thread; false when another process has it
/// or it finished meanwhile.
fn start<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    sh: &'s Shared<'s>,
    node: usize,
    slot: usize,
    tx: &mpsc::Sender<Finished>,
    on_event: &'s (dyn Fn(&Event) + Sync),
) -> Result<bool, StoreError> {
    let device = sh.opts.devices[slot % sh.opts.devices.len()].clone();
    let Some(attempt) = claim(sh, node, &device, on_event)? else {
        return Ok(false);
    };
    let tx = tx.clone();
    scope.spawn(move || {
        let outcome = run_one(sh, node, attempt, &device, on_event);
        let _ = tx.send(Finished { node, slot, outcome });
    });
    Ok(true)
}

/// Who holds the runs this process claims: `host:pid`.
fn this_process() -> String {
    format!("{}:{}", hostname(), std::process::id())
}

/// Claims run `node` for `device` and says it started; its attempt number, or None when
/// another process has it, it is finished, or its parents are not done.
fn claim(
    sh: &Shared,
    node: usize,
    device: &str,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<Option<u32>, StoreError> {
    let n = &sh.plan.nodes[node];
    let claim = Claim {
        owner: &sh.owner,
        device,
        provenance: sh.provenance,
        job: sh.opts.job_ref(),
    };
    let attempt = sh.store.claim(&n.id, &claim)?;
    if let Some(attempt) = attempt {
        on_event(&Event::Started {
            run: n.id.clone(),
            stage: n.stage.clone(),
            device: device.to_string(),
            attempt,
        });
    }
    Ok(attempt)
}

/// Runs that can start now: to run, not already ours, all parents done.
fn ready(plan: &Plan, states: &[NodeState], in_flight: &HashSet<usize>) -> Vec<usize> {
    (0..plan.nodes.len())
        .filter(|&i| states[i] == NodeState::ToRun && !in_flight.contains(&i))
        .filter(|&i| {
            plan.nodes[i]
                .parents
                .iter()
                .all(|&p| states[p] == NodeState::Done)
        })
        .collect()
}

/// True when no run can make progress any more, here or in another process.
fn nothing_left(states: &[NodeState]) -> bool {
    !states
        .iter()
        .any(|s| matches!(s, NodeState::ToRun | NodeState::Running))
}

/// Records each epoch in the store as it finishes and passes the run's progress on.
struct RunObserver<'a> {
    store: &'a Store,
    node: &'a PlanNode,
    on_event: &'a (dyn Fn(&Event) + Sync),
    /// The first epoch the store refused: the run fails with it once it ends, since its
    /// per-epoch record would have a hole.
    unrecorded: Mutex<Option<String>>,
}

impl Observer for RunObserver<'_> {
    fn batch(&self, at: Position) {
        (self.on_event)(&Event::Batch {
            run: self.node.id.clone(),
            at,
        });
    }

    fn epoch(&self, metrics: &EpochMetrics, epochs: usize) {
        if let Err(e) = self.store.record_epoch(&self.node.id, metrics) {
            if let Ok(mut first) = self.unrecorded.lock() {
                first.get_or_insert_with(|| format!("epoch {}: {e}", metrics.epoch));
            }
        }
        (self.on_event)(&Event::Epoch {
            run: self.node.id.clone(),
            stage: self.node.stage.clone(),
            epochs,
            metrics: metrics.clone(),
        });
    }
}

fn run_dir(sh: &Shared, id: &str) -> PathBuf {
    sh.opts.out_root.join(id)
}

fn parents_of(sh: &Shared, node: &PlanNode) -> Result<Vec<ParentRun>, StoreError> {
    node.parents
        .iter()
        .map(|&p| {
            let parent = &sh.plan.nodes[p];
            let checkpoint = sh
                .store
                .artifacts_of(&parent.id, CHECKPOINT)?
                .pop()
                .map(PathBuf::from);
            Ok(ParentRun {
                id: parent.id.clone(),
                checkpoint,
            })
        })
        .collect()
}

/// Trains one claimed run and records how it ended. A trainer panic is a failure of the run.
fn run_one(
    sh: &Shared,
    node: usize,
    attempt: u32,
    device: &str,
    on_event: &(dyn Fn(&Event) + Sync),
) -> Result<(RunStatus, Option<String>), StoreError> {
    let n = &sh.plan.nodes[node];
    let out_dir = run_dir(sh, &n.id);
    if attempt == 1 {
        set_aside_leftovers(&out_dir);
    }
    let outcome = parents_of(sh, n)
        .map_err(|e| TrainError::Failed(e.to_string()))
        .and_then(|parents| {
            std::fs::create_dir_all(&out_dir).map_err(|source| TrainError::Io {
                path: out_dir.clone(),
                source,
            })?;
            let observer = RunObserver {
                store: sh.store,
                node: n,
                on_event,
                unrecorded: Mutex::new(None),
            };
            let ctx = RunContext {
                out_dir: out_dir.clone(),
                parents,
                attempt,
                device: device.to_string(),
                cancel: sh.cancel.clone(),
                observer: &observer,
            };
            let spec = RunSpec {
                id: n.id.clone(),
                stage: n.stage.clone(),
                config: n.config.clone(),
            };
            let result = catch_unwind(AssertUnwindSafe(|| sh.trainer.run(&spec, &ctx)))
                .unwrap_or_else(|panic| Err(TrainError::Failed(panic_message(&panic))))?;
            match observer.unrecorded.into_inner().ok().flatten() {
                Some(e) => Err(TrainError::Sink(e)),
                None => Ok(result),
            }
        });
    match outcome {
        Ok(result) => record(sh, &n.id, result),
        Err(TrainError::Interrupted { .. }) => release(sh, &n.id, RunStatus::Interrupted, None),
        Err(e) => release(sh, &n.id, RunStatus::Failed, Some(e.to_string())),
    }
}

/// A first attempt has nothing to resume: files already in its folder belong to a run whose row
/// was removed (`repro rm`, a deleted store). They are moved aside, not adopted, so the run
/// trains from the start; nothing is deleted.
fn set_aside_leftovers(out_dir: &Path) {
    if !out_dir.exists() {
        return;
    }
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = out_dir.as_os_str().to_owned();
    aside.push(format!(".orphaned-{stamp}"));
    match std::fs::rename(out_dir, &aside) {
        Ok(()) => eprintln!(
            "note: {} held files of an earlier run with this id that the store no longer has; moved to {}",
            out_dir.display(),
            Path::new(&aside).display()
        ),
        Err(e) => eprintln!(
            "warning: cannot move aside the leftovers in {}: {e}",
            out_dir.display()
        ),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let msg = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    format!("trainer panicked: {msg}")
}

fn release(
    sh: &Shared,
    id: &str,
    status: RunStatus,
    error: Option<String>,
) -> Result<(RunStatus, Option<String>), StoreError> {
    sh.store.release(id, &sh.owner, status, error.as_deref())?;
    Ok((status, error))
}

fn record(sh: &Shared, id: &str, mut result: RunResult) -> Result<(RunStatus, Option<String>), StoreError> {
    for a in &mut result.artifacts {
        if let Ok((sha256, bytes)) = digest(&a.path) {
            a.sha256 = Some(sha256);
            a.bytes = Some(bytes);
        }
    }
    sh.store.finish(id, &sh.owner, &result)?;
    Ok(match result.diverged {
        None => (RunStatus::Done, None),
        Some(reason) => (RunStatus::Diverged, Some(reason)),
    })
}

fn digest(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let bytes = io::copy(&mut file, &mut hasher)?;
    let hex = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, bytes))
}
