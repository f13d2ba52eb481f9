//! `repro verify`: model fidelity against reference PyTorch fixtures.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use repro::backend::DeviceSpec;
use repro::verify::{verify, VerifyError, VerifyReport, WeightsChoice};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Fixture files to check.
    #[arg(required = true)]
    pub fixtures: Vec<PathBuf>,
    /// Which weights file to load: the fixture's preferred one (safetensors when named), one
    /// format, or both in turn.
    #[arg(long, value_enum, default_value_t = WeightsArg::Preferred)]
    pub weights: WeightsArg,
    /// Widen the fixture's tolerance by N float32 ulps of its largest logit. Independent f32
    /// implementations differ by a few ulps of the output's magnitude; 0 applies the fixture's
    /// tolerance exactly.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub tolerance_ulps: u32,
    /// Device to run on: cpu or cuda:N (CUDA needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print one JSON object per check instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum WeightsArg {
    Preferred,
    Safetensors,
    Pth,
    Both,
}

impl WeightsArg {
    fn choices(self) -> Vec<WeightsChoice> {
        match self {
            Self::Preferred => vec![WeightsChoice::Preferred],
            Self::Safetensors => vec![WeightsChoice::Safetensors],
            Self::Pth => vec![WeightsChoice::Pth],
            Self::Both => vec![WeightsChoice::Safetensors, WeightsChoice::Pth],
        }
    }
}

/// Some check ran and was over its tolerance (exit status 1).
#[derive(Debug, thiserror::Error)]
#[error("{0} of the checks did not match")]
pub struct Mismatch(pub usize);

/// Some fixture or its weights could not be used (exit status 2); each was reported as it came.
#[derive(Debug, thiserror::Error)]
#[error("{0} of the checks could not be run (see above)")]
pub struct Unusable(pub usize);

impl repro::exit::ExitStatus for Unusable {
    fn exit_code(&self) -> i32 {
        repro::exit::INPUT
    }
}

impl repro::exit::ExitStatus for Mismatch {
    fn exit_code(&self) -> i32 {
        repro::exit::FAILURE
    }
}

/// Checks every fixture (all of them, even after a failure) and reports the worst outcome:
/// an unusable fixture before a mismatch.
pub fn cmd_verify(args: VerifyArgs) -> anyhow::Result<()> {
    let spec: DeviceSpec = args.device.parse()?;
    let spec = spec.check_available()?;
    let (mut unusable, mut mismatches) = (0, 0);
    for fixture in &args.fixtures {
        for choice in args.weights.choices() {
            match verify_on(spec, fixture, choice, args.tolerance_ulps) {
                Ok(report) => {
                    print_report(&report, args.json);
                    mismatches += usize::from(!report.passed());
                }
                Err(e) => {
                    print_unusable(fixture, &e, args.json);
                    unusable += 1;
                }
            }
        }
    }
    match (unusable, mismatches) {
        (0, 0) => Ok(()),
        (0, n) => Err(Mismatch(n).into()),
        (n, _) => Err(Unusable(n).into()),
    }
}

fn verify_on(
    spec: DeviceSpec,
    fixture: &Path,
    choice: WeightsChoice,
    ulps: u32,
) -> anyhow::Result<VerifyReport> {
    repro::with_backend!(spec, |B, device| Ok::<_, VerifyError>(verify::<B>(
        fixture, choice, ulps, &device
    )?))
    .map_err(Into::into)
}

/// Each unusable fixture is said once, here, with its reason; the command's own error only counts.
fn print_unusable(fixture: &Path, error: &anyhow::Error, json: bool) {
    if json {
        let value = serde_json::json!({
            "fixture": fixture,
            "error": format!("{error:#}"),
            "passed": false,
        });
        println!("{value}");
    } else {
        eprintln!("{}: unusable: {error:#}", fixture.display());
    }
}

fn print_report(report: &VerifyReport, json: bool) {
    if json {
        let value = serde_json::json!({
            "fixture": report.name,
            "weights": report.weights,
            "max_abs_diff": report.max_abs_diff,
            "tolerance": report.tolerance,
            "effective_tolerance": report.effective_tolerance(),
            "passed": report.passed(),
        });
        println!("{value}");
    } else {
        let verdict = if report.passed() { "ok" } else { "MISMATCH" };
        println!(
            "{}: max |Δ| = {:.3e} (tolerance {:.2e}, {}) {verdict}",
            report.name,
            report.max_abs_diff,
            report.effective_tolerance(),
            report.weights.display()
        );
    }
}
