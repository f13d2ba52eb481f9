//! The `repro` command line: parses arguments, calls the library, maps errors to exit codes
//! (0 success, 1 a check that ran and failed, 2 usage or input errors).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use repro::backend::DeviceSpec;
use repro::verify::{verify, VerifyError, VerifyReport, WeightsChoice};

#[derive(Parser)]
#[command(
    name = "repro",
    version,
    about = "Reproduce the experiments of 'Adaptive Parametric Activation' (APA, AGLU)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check that our model reproduces a reference PyTorch model's logits.
    ///
    /// FIXTURE is a JSON file with a `model` section (the run-config contract), reference
    /// weights (`weights`: safetensors, `weights_pth`: PyTorch pickle, relative to the
    /// fixture), an `input` batch and the reference `logits`. Prints the largest absolute
    /// difference; exits 1 when it is over the fixture's tolerance, 2 when the fixture or its
    /// weights are unusable.
    Verify {
        /// Fixture files to check.
        #[arg(required = true)]
        fixtures: Vec<PathBuf>,
        /// Which weights file to load: the fixture's preferred one (safetensors when named),
        /// one format, or both in turn.
        #[arg(long, value_enum, default_value_t = WeightsArg::Preferred)]
        weights: WeightsArg,
        /// Widen the fixture's tolerance by N float32 ulps of its largest logit. Independent
        /// f32 implementations differ by a few ulps of the output's magnitude; 0 applies the
        /// fixture's tolerance exactly.
        #[arg(long, value_name = "N", default_value_t = 0)]
        tolerance_ulps: u32,
        /// Device to run on: cpu or cuda:N (CUDA needs a build with `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Print one JSON object per check instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum WeightsArg {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify {
            fixtures,
            weights,
            tolerance_ulps,
            device,
            json,
        } => run_verify(&fixtures, weights, tolerance_ulps, &device, json),
    }
}

fn run_verify(fixtures: &[PathBuf], weights: WeightsArg, ulps: u32, device: &str, json: bool) -> ExitCode {
    let spec = match device.parse::<DeviceSpec>().and_then(DeviceSpec::check_available) {
        Ok(spec) => spec,
        Err(e) => return usage_error(e),
    };
    let mut worst = ExitCode::SUCCESS;
    for fixture in fixtures {
        for choice in weights.choices() {
            match verify_on(spec, fixture, choice, ulps) {
                Ok(report) => {
                    print_report(&report, json);
                    if !report.passed() && worst == ExitCode::SUCCESS {
                        worst = ExitCode::from(1);
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    worst = ExitCode::from(2);
                }
            }
        }
    }
    worst
}

fn verify_on(
    spec: DeviceSpec,
    fixture: &std::path::Path,
    choice: WeightsChoice,
    ulps: u32,
) -> anyhow::Result<VerifyReport> {
    repro::with_backend!(spec, |B, device| Ok::<_, VerifyError>(verify::<B>(
        fixture, choice, ulps, &device
    )?))
    .map_err(Into::into)
}

fn print_report(report: &VerifyReport, json: bool) {
    let verdict = if report.passed() { "ok" } else { "MISMATCH" };
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
        println!(
            "{}: max |Δ| = {:.3e} (tolerance {:.2e}, {}) {verdict}",
            report.name,
            report.max_abs_diff,
            report.effective_tolerance(),
            report.weights.display()
        );
    }
}

fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}
