//! Read-only commands: config, plan, status, show, list.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use clap::Args;
use serde::Serialize;

use super::common::{labels_text, print_json, DbArg, ManifestArgs, ManifestOpts};
use repro::config::layers::explain;
use repro::config::load::{load_all, LoadedManifest, ManifestKind};
use repro::config::manifest::PAPER_PROFILE;
use repro::config::{ConfigError, Overrides};
use repro::exec::provenance::staleness;
use repro::exec::{plan_report, ExecOptions, PlanReport};
use repro::plan::{expand, point_of, run_layers, NodeState};
use repro::store::{Holder, Store};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Say which layer set this key, for each run
    #[arg(long, value_name = "KEY.PATH")]
    pub explain: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ConfigLine {
    run: String,
    stage: String,
    labels: BTreeMap<String, String>,
    seed: u64,
    /// The resolved config, or with --explain the sentence naming the layer.
    config: serde_json::Value,
}

pub fn cmd_config(args: ConfigArgs) -> anyhow::Result<()> {
    let (m, plan) = args.manifest.plan(ManifestKind::Any)?;
    let overrides = args.manifest.opts.overrides()?;
    let mut lines = Vec::new();
    for member in &plan.members {
        let node = &plan.nodes[member.node];
        let config = match &args.explain {
            Some(key) => {
                let point = point_of(&m, &member.labels);
                let layers = run_layers(&m, &plan.profile, &member.stage, &point, member.seed, &overrides);
                serde_json::Value::String(explain(&layers, key)?)
            }
            None => serde_json::to_value(&node.config)?,
        };
        lines.push(ConfigLine {
            run: node.id.clone(),
            stage: member.stage.clone(),
            labels: member.labels.clone(),
            seed: member.seed,
            config,
        });
    }
    if args.json {
        return print_json(&lines);
    }
    for l in lines {
        println!(
            "# run {} stage={} seed={} {}",
            l.run,
            l.stage,
            l.seed,
            labels_text(&l.labels)
        );
        match &l.config {
            serde_json::Value::String(s) => println!("{s}\n"),
            cfg => println!("{}", serde_yaml::to_string(cfg)?),
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_report(r: &PlanReport) {
    println!("{} (profile {}): {} runs", r.manifest, r.profile, r.runs);
    println!(
        "  {:<12} {:>6} {:>7} {:>7} {:>7} {:>6} {:>8}",
        "stage", "done", "to run", "blocked", "running", "failed", "diverged"
    );
    for c in &r.stages {
        println!(
            "  {:<12} {:>6} {:>7} {:>7} {:>7} {:>6} {:>8}",
            c.stage, c.done, c.to_run, c.blocked, c.running, c.failed, c.diverged
        );
    }
    println!(
        "  cost of what is left: {} epochs, {} image passes",
        grouped(r.cost.epochs),
        grouped(r.cost.image_passes)
    );
    if let Some(reason) = &r.unsupported {
        println!("  unsupported: {reason} (`repro run` refuses it)");
    }
}

pub fn cmd_plan(args: PlanArgs) -> anyhow::Result<()> {
    let (_, plan) = args.manifest.plan(ManifestKind::Any)?;
    let store = args.db.open_if_exists()?;
    let (report, _) = plan_report(&plan, store.as_ref())?;
    if args.json {
        return print_json(&report);
    }
    print_report(&report);
    Ok(())
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Manifest id or path; all manifests in the store when left out
    pub name: Option<String>,
    #[command(flatten)]
    pub opts: ManifestOpts,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct RunLine {
    run: String,
    stage: String,
    labels: BTreeMap<String, String>,
    seed: u64,
    state: NodeState,
    error: Option<String>,
    metrics: BTreeMap<String, BTreeMap<String, f64>>,
    holder: Option<HolderLine>,
    /// The Slurm job that runs or ran it, and its state in Slurm's queue (`None` once Slurm
    /// no longer lists it).
    job: Option<JobLine>,
}

pub fn cmd_status(args: StatusArgs) -> anyhow::Result<()> {
    let Some(name) = args.name.clone() else {
        let summaries = args.db.open_read_only()?.manifest_summaries()?;
        if args.json {
            return print_json(&summaries);
        }
        for s in summaries {
            let parts: Vec<String> = s.by_status.iter().map(|(k, v)| format!("{v} {k}")).collect();
            println!(
                "{} [{}]: {}/{} done ({})",
                s.manifest,
                s.profile,
                s.done(),
                s.total,
                parts.join(", ")
            );
        }
        return Ok(());
    };
    let m = args.opts.load(&name, ManifestKind::Any)?;
    let store = args.db.open_if_exists()?;
    let (profile, others) = status_profile(&args.opts, &m, store.as_ref())?;
    let plan = args.opts.expand(&m, &profile)?;
    let (report, states) = plan_report(&plan, store.as_ref())?;
    let (stored, holders) = match &store {
        Some(store) => (
            store.manifest_runs(&plan.manifest, &plan.profile)?,
            store.holders()?,
        ),
        None => Default::default(),
    };
    let stored: HashMap<String, _> = stored.into_iter().map(|r| (r.run_id.clone(), r)).collect();
    let queue = slurm_queue(stored.values().any(|r| r.job.is_some()));
    let lines: Vec<RunLine> = plan
        .nodes
        .iter()
        .zip(&states)
        .map(|(n, s)| RunLine {
            run: n.id.clone(),
            stage: n.stage.clone(),
            labels: n.labels.clone(),
            seed: n.seed,
            state: *s,
            error: stored.get(&n.id).and_then(|r| r.error.clone()),
            metrics: stored.get(&n.id).map(|r| r.metrics.clone()).unwrap_or_default(),
            holder: holders.iter().find(|h| h.run == n.id).map(HolderLine::of),
            job: stored.get(&n.id).and_then(|r| r.job.clone()).map(|id| JobLine {
                state: queue.get(&id).cloned(),
                id,
            }),
        })
        .collect();
    if args.json {
        return print_json(&serde_json::json!({ "summary": report, "runs": lines }));
    }
    print_report(&report);
    if !others.is_empty() {
        println!(
            "  also in the store: profile {} (--profile to see it)",
            others.join(", ")
        );
    }
    for l in lines {
        println!(
            "  {}  {:<8} {:<10} seed={} {}{}",
            l.run,
            l.stage,
            l.state.as_str(),
            l.seed,
            labels_text(&l.labels),
            l.details()
        );
    }
    Ok(())
}

/// The profile `status NAME` shows: the one asked for, else the one with the latest run in the
/// store (a smoke quick start shows its smoke runs, not 21 paper runs "to run"), else paper.
/// Also returns the other profiles with runs, to mention them.
fn status_profile(
    opts: &ManifestOpts,
    m: &LoadedManifest,
    store: Option<&Store>,
) -> anyhow::Result<(String, Vec<String>)> {
    let mut stored = match store {
        Some(store) => store.manifest_summaries()?,
        None => Vec::new(),
    };
    stored.retain(|s| s.manifest == m.manifest.id);
    stored.sort_by(|a, b| {
        b.last_started
            .partial_cmp(&a.last_started)
            .unwrap_or(Ordering::Equal)
    });
    let profile = match (&opts.profile, stored.first()) {
        (Some(p), _) => p.clone(),
        (None, Some(latest)) => latest.profile.clone(),
        (None, None) => opts.profile().to_string(),
    };
    let others = stored
        .into_iter()
        .map(|s| s.profile)
        .filter(|p| *p != profile)
        .collect();
    Ok((profile, others))
}

/// Who holds a running run, and whether a sweep would take it over.
#[derive(Debug, Serialize)]
struct HolderLine {
    owner: String,
    heartbeat_age_s: Option<f64>,
    /// Why the next `run` takes it over, when it would.
    stale: Option<String>,
}

impl HolderLine {
    fn of(h: &Holder) -> Self {
        let silent = h.silent_for_s();
        Self {
            owner: h.owner.clone(),
            heartbeat_age_s: silent.is_finite().then_some(silent),
            stale: staleness(h, ExecOptions::default().stale_after_s).map(|s| s.to_string()),
        }
    }
}

#[derive(Debug, Serialize)]
struct JobLine {
    id: String,
    state: Option<String>,
}

/// Slurm's queue, when some run has a job; a store read where Slurm is not installed (results
/// taken home) shows the job ids without states.
fn slurm_queue(wanted: bool) -> HashMap<String, String> {
    if !wanted {
        return HashMap::new();
    }
    repro::exec::slurm::queue().unwrap_or_else(|e| {
        eprintln!("note: job states unknown: {e}");
        HashMap::new()
    })
}

impl RunLine {
    /// `  top1 45.67  (error)` / `  (held by node7:42, heartbeat 3 s ago)`.
    fn details(&self) -> String {
        let mut text = String::new();
        let test = self.metrics.get("test");
        for name in SHOWN_METRICS {
            if let Some(value) = test.and_then(|m| m.get(name)) {
                text.push_str(&format!("  {name} {value:.2}"));
            }
        }
        if let Some(h) = &self.holder {
            let beat = h
                .heartbeat_age_s
                .map_or("no heartbeat".to_string(), |s| format!("heartbeat {s:.0} s ago"));
            let stale = h
                .stale
                .as_ref()
                .map(|s| format!("; stale: {s}, the next run takes it over"))
                .unwrap_or_default();
            text.push_str(&format!("  (held by {}, {beat}{stale})", h.owner));
        }
        if let Some(job) = &self.job {
            let state = match (&job.state, self.state) {
                (Some(state), _) => format!(" {state}"),
                // Marked running by a job Slurm has forgotten: it died with its job.
                (None, NodeState::Running) => " not in queue".to_string(),
                (None, _) => String::new(),
            };
            text.push_str(&format!("  [slurm {}{state}]", job.id));
        }
        if let Some(e) = &self.error {
            text.push_str(&format!("  ({e})"));
        }
        text
    }
}

/// Final test metrics `status` prints per run (all of them are in `--json` and `show`).
const SHOWN_METRICS: [&str; 4] = ["top1", "many", "medium", "few"];

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Run id (a unique prefix is enough)
    pub run: String,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_show(args: ShowArgs) -> anyhow::Result<()> {
    let store = args.db.open_read_only()?;
    let d = store.run_detail(&args.run)?;
    if args.json {
        return print_json(&d);
    }
    println!(
        "run {}  stage {}  status {}  attempt {}  seed {}",
        d.id, d.stage, d.status, d.attempt, d.seed
    );
    if !d.parents.is_empty() {
        println!("parents: {}", d.parents.join(", "));
    }
    for (manifest, profile, labels) in &d.members {
        println!("in {manifest} [{profile}] {labels}");
    }
    println!("provenance:");
    for (k, v) in &d.provenance {
        println!("  {k}: {v}");
    }
    println!("config:\n{}", indent(&serde_yaml::to_string(&d.config)?));
    let r = &d.result;
    println!("final metrics:");
    for (split, values) in &r.metrics {
        for (name, value) in values {
            println!("  {split}/{name} = {value}");
        }
    }
    println!("per-epoch metrics:");
    for e in &r.epochs {
        let optional = |name: &str, v: Option<f64>| v.map_or(String::new(), |v| format!("  {name} {v:.4}"));
        println!(
            "  epoch {:>4}  loss {:.4}{}{}{}{}{}{}",
            e.epoch,
            e.loss,
            optional("lr", e.lr),
            optional("test_top1", e.test_top1),
            optional("val_loss", e.val_loss),
            optional("images/s", e.images_per_s),
            optional("tokens/s", e.tokens_per_s),
            optional("eval_s", e.eval_seconds),
        );
    }
    if !r.classes.is_empty() {
        println!("per-class results: {} classes", r.classes.len());
    }
    for p in &r.learned {
        println!("  learned {}.{} = {}", p.module, p.name, p.value);
    }
    for a in &r.artifacts {
        println!(
            "  artifact {}: {} ({} bytes, sha256 {})",
            a.kind,
            a.path.display(),
            a.bytes.unwrap_or(0),
            a.sha256.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, default_value = "experiments")]
    pub experiments: std::path::PathBuf,
    #[command(flatten)]
    pub db: DbArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ListLine {
    id: String,
    path: String,
    title: Option<String>,
    error: Option<String>,
    /// profile → (done, total) as recorded in the store
    progress: BTreeMap<String, (usize, usize)>,
}

/// A manifest whose runs do not resolve under one of its profiles (an axis value that is no
/// activation, say) parses, but cannot run: `list` says so rather than "not run".
fn expands(m: &LoadedManifest) -> Result<(), ConfigError> {
    let profiles = std::iter::once(PAPER_PROFILE).chain(m.manifest.profiles.keys().map(String::as_str));
    for profile in profiles {
        expand(m, profile, &Overrides::default())?;
    }
    Ok(())
}

pub fn cmd_list(args: ListArgs) -> anyhow::Result<()> {
    if !args.experiments.is_dir() {
        return Err(ConfigError::Usage(format!(
            "no manifest folder {} (run from the project folder, or pass --experiments DIR)",
            args.experiments.display()
        ))
        .into());
    }
    let summaries = match args.db.open_if_exists()? {
        Some(store) => store.manifest_summaries()?,
        None => Vec::new(),
    };
    let lines: Vec<ListLine> = load_all(&args.experiments, ManifestKind::Any)
        .into_iter()
        .map(|(path, loaded)| {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let (id, title, error) = match loaded.map(|m| (expands(&m), m)) {
                Ok((Ok(()), m)) => (m.manifest.id, Some(m.manifest.title), None),
                Ok((Err(e), m)) => (m.manifest.id, None, Some(e.to_string())),
                Err(e) => (stem, None, Some(e.to_string())),
            };
            let progress = summaries
                .iter()
                .filter(|s| s.manifest == id)
                .map(|s| (s.profile.clone(), (s.done(), s.total)))
                .collect();
            ListLine {
                id,
                path: path.display().to_string(),
                title,
                error,
                progress,
            }
        })
        .collect();
    if args.json {
        return print_json(&lines);
    }
    for l in lines {
        let progress: Vec<String> = l
            .progress
            .iter()
            .map(|(p, (d, t))| format!("{p} {d}/{t}"))
            .collect();
        let progress = if progress.is_empty() {
            "not run".to_string()
        } else {
            progress.join(", ")
        };
        match (l.title, l.error) {
            (Some(title), _) => println!("{:<20} {progress:<24} {title}", l.id),
            (None, Some(err)) => println!("{:<20} INVALID: {err}", l.id),
            (None, None) => println!("{}", l.id),
        }
    }
    Ok(())
}
