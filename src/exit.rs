//! Process exit statuses. Each error type says which status it means, next to its definition;
//! the binary maps a failed command to the status of the first error in its chain that says.

/// 2: the user's input (a manifest, an override, a fixture, a name) is unusable.
pub const INPUT: i32 = 2;
/// 1: a failure, or a check that did not pass.
pub const FAILURE: i32 = 1;
/// 130: stopped by Ctrl-C (128 + SIGINT).
pub const INTERRUPTED: i32 = 130;

/// An error that knows the exit status it means.
pub trait ExitStatus {
    fn exit_code(&self) -> i32;
}
