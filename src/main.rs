//! The `repro` command line: parse, call the library, map errors to exit codes (0 success,
//! 1 a failure or a check that did not pass, 2 usage or input errors, 130 after Ctrl-C).

use clap::Parser;

mod cli;

fn main() {
    // Die quietly on a closed pipe (`repro config … | head`) instead of panicking in println!.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    repro::backend::keep_freed_memory();
    let cli = cli::Cli::parse();
    if let Err(err) = cli::dispatch(cli, &repro::exec::BurnTrainer) {
        eprintln!("error: {}", cli::message(&err));
        std::process::exit(cli::exit_code(&err));
    }
}
