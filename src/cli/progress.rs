//! What `run`, `sweep` and `train` say while they work: a bar with the current runs' epoch,
//! batch and time left on a terminal; a line per finished epoch otherwise (logs, Slurm, CI);
//! JSON lines with `--json`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use repro::exec::{Event, Observer};
use repro::result::EpochMetrics;
use repro::store::Holder;
use repro::train::Position;

/// How progress is shown, chosen once per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Json,
    Terminal,
    Lines,
}

impl Mode {
    pub fn detect(json: bool) -> Self {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Lines
        }
    }
}

/// `1h02m`, `4m05s`, `12s`.
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, _) => format!("{h}h{m:02}m"),
    }
}

/// A run's progress since this process started it, for its time left.
struct Tracked {
    started: Instant,
    first: Option<usize>,
    at: Option<Position>,
}

impl Tracked {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            first: None,
            at: None,
        }
    }

    fn step(at: &Position) -> usize {
        at.epoch * at.batches + at.batch
    }

    fn update(&mut self, at: Position) {
        self.first.get_or_insert(Self::step(&at).saturating_sub(1));
        self.at = Some(at);
    }

    /// `epoch 3/15 batch 40/97, 2m10s left`: time left extrapolated from the batches done here.
    fn text(&self) -> String {
        let Some(at) = self.at else {
            return "starting".into();
        };
        let now = Tracked::step(&at);
        let done = now - self.first.unwrap_or(0);
        let left = at.epochs * at.batches - now;
        let eta = self.started.elapsed().mul_f64(left as f64 / done.max(1) as f64);
        format!(
            "epoch {}/{} batch {}/{}, {} left",
            at.epoch + 1,
            at.epochs,
            at.batch,
            at.batches,
            duration_text(eta)
        )
    }
}

fn bar(template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

/// Runs named in the line that says how many runs repeated an error.
const REPEATS_NAMED: usize = 5;

/// Progress of a whole `run`/`sweep`, fed by the executor's events.
pub struct RunProgress {
    mode: Mode,
    bar: Option<ProgressBar>,
    active: Mutex<BTreeMap<String, Tracked>>,
    /// Failure messages already shown, with the runs that repeated each: a missing dataset
    /// fails every run the same way, and one line says it.
    errors: Mutex<BTreeMap<String, Vec<String>>>,
}

impl RunProgress {
    pub fn new(mode: Mode) -> Self {
        let bar = (mode == Mode::Terminal).then(|| bar("{bar:30} {pos}/{len} runs  {elapsed}  {msg}"));
        Self {
            mode,
            bar,
            active: Mutex::default(),
            errors: Mutex::default(),
        }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub fn event(&self, e: &Event) {
        if self.mode == Mode::Json {
            if !matches!(e, Event::Batch { .. }) {
                if let Ok(line) = serde_json::to_string(e) {
                    println!("{line}");
                }
            }
            return;
        }
        match e {
            Event::Planned { to_run, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(*to_run as u64);
                }
            }
            Event::Waiting {
                holders,
                stale_after_s,
            } => self.say(&waiting_text(holders, *stale_after_s)),
            Event::Started {
                run, stage, device, ..
            } => {
                self.track(run, None);
                if self.mode == Mode::Lines {
                    self.say(&format!("{run} {stage}: started on {device}"));
                }
            }
            Event::Batch { run, at } => self.track(run, Some(*at)),
            Event::Epoch {
                run,
                stage,
                epochs,
                metrics,
            } => {
                if self.mode == Mode::Lines {
                    self.say(&format!("{run} {stage}: {}", metrics.line(Some(*epochs))));
                }
            }
            Event::Finished {
                run, status, error, ..
            } => self.finished(run, &status.to_string(), error.as_deref()),
        }
    }

    fn track(&self, run: &str, at: Option<Position>) {
        let Ok(mut active) = self.active.lock() else {
            return;
        };
        let tracked = active.entry(run.to_string()).or_insert_with(Tracked::new);
        if let Some(at) = at {
            tracked.update(at);
        }
        if let Some(bar) = &self.bar {
            let parts: Vec<String> = active
                .iter()
                .map(|(id, t)| format!("{}: {}", &id[..id.len().min(8)], t.text()))
                .collect();
            bar.set_message(parts.join("; "));
        }
    }

    fn finished(&self, run: &str, status: &str, error: Option<&str>) {
        if let Ok(mut active) = self.active.lock() {
            active.remove(run);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        let Some(err) = error else {
            if self.mode == Mode::Lines {
                self.say(&format!("{run}: {status}"));
            }
            return;
        };
        let first = self
            .errors
            .lock()
            .map(|mut seen| match seen.get_mut(err) {
                Some(repeats) => {
                    repeats.push(run.to_string());
                    false
                }
                None => {
                    seen.insert(err.to_string(), Vec::new());
                    true
                }
            })
            .unwrap_or(true);
        if first {
            self.say(&format!("{run}: {status}: {err}"));
        }
    }

    /// Clears the bar and says how many runs repeated an error already shown.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Ok(seen) = self.errors.lock() {
            for repeats in seen.values().filter(|r| !r.is_empty()) {
                let shown = repeats
                    .iter()
                    .take(REPEATS_NAMED)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = if repeats.len() > REPEATS_NAMED {
                    ", …"
                } else {
                    ""
                };
                eprintln!(
                    "{} more runs failed with the same error as above: {shown}{more}",
                    repeats.len()
                );
            }
        }
    }
}

/// `waiting for 2 runs held by node7:4242 (last heartbeat 12 s ago) until 14:05:31 UTC at the
/// latest, when they count as abandoned and are taken over`.
fn waiting_text(holders: &[Holder], stale_after_s: f64) -> String {
    let mut owners: BTreeMap<&str, f64> = BTreeMap::new();
    for h in holders {
        let silent = owners.entry(h.owner.as_str()).or_insert(f64::INFINITY);
        *silent = silent.min(h.silent_for_s());
    }
    let who: Vec<String> = owners
        .iter()
        .map(|(owner, silent)| match silent.is_finite() {
            true => format!("{owner} (last heartbeat {silent:.0} s ago)"),
            false => format!("{owner} (no heartbeat)"),
        })
        .collect();
    let freshest = owners.values().copied().fold(f64::INFINITY, f64::min);
    let until = match freshest.is_finite() {
        true => format!(
            " until {} at the latest, when they count as abandoned and are taken over (--stale-after)",
            clock_text(stale_after_s - freshest)
        ),
        false => String::new(),
    };
    format!(
        "waiting for {} runs held by {}{until}",
        holders.len(),
        who.join(", ")
    )
}

/// The UTC wall-clock time `seconds` from now, `HH:MM:SS UTC`.
fn clock_text(seconds: f64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let t = (now.as_secs_f64() + seconds.max(0.0)) as u64 % 86_400;
    format!("{:02}:{:02}:{:02} UTC", t / 3600, t % 3600 / 60, t % 60)
}

/// Progress of one `repro train`.
pub struct TrainProgress {
    mode: Mode,
    bar: Option<ProgressBar>,
    tracked: Mutex<Tracked>,
}

impl TrainProgress {
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            bar: (mode == Mode::Terminal).then(|| bar("{spinner} {msg}")),
            tracked: Mutex::new(Tracked::new()),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Observer for TrainProgress {
    fn batch(&self, at: Position) {
        let (Some(bar), Ok(mut tracked)) = (&self.bar, self.tracked.lock()) else {
            return;
        };
        tracked.update(at);
        bar.set_message(tracked.text());
        bar.tick();
    }

    fn epoch(&self, metrics: &EpochMetrics, epochs: usize) {
        match self.mode {
            Mode::Json => {
                // The same fields as `run --json`'s epoch events, less the run.
                if let Ok(serde_json::Value::Object(mut event)) = serde_json::to_value(metrics) {
                    event.insert("event".into(), "epoch".into());
                    event.insert("epochs".into(), epochs.into());
                    println!("{}", serde_json::Value::Object(event));
                }
            }
            Mode::Lines => eprintln!("{}", metrics.line(Some(epochs))),
            Mode::Terminal => {
                if let Some(bar) = &self.bar {
                    bar.println(metrics.line(Some(epochs)));
                }
            }
        }
    }
}
