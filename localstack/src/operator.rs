//! What the demos share: the operator's `keyrotor` command against the local stack (the
//! endpoint, credentials and state machines of the stack, the command line shown first), and
//! how a demo ends.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::stack::LocalStack;
use crate::workspace_root;

/// Runs `keyrotor ARGS` (the debug build), showing the command and its output, or writing
/// its output to `to` (its progress still shown). Returns the exit code.
pub fn keyrotor(stack: &LocalStack, args: &[&str], to: Option<&Path>) -> Result<Option<i32>> {
    let binary = workspace_root().join("target/debug/keyrotor");
    if !binary.exists() {
        bail!(
            "{} is missing: run `cargo build --workspace --bins`",
            binary.display()
        );
    }
    let mut command = stack.operator_command(&binary);
    command
        .args(args)
        .env("KEYROTOR_STATE_MACHINE_ARN", &stack.state_machine_arn)
        .env(
            "KEYROTOR_SCAN_STATE_MACHINE_ARN",
            &stack.scan_state_machine_arn,
        )
        .env(
            "KEYROTOR_ORGANIZATION_STATE_MACHINE_ARN",
            &stack.organization_state_machine_arn,
        );
    match to {
        Some(path) => {
            println!("\n  $ keyrotor {} > {}", args.join(" "), path.display());
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            command.stdout(std::fs::File::create(path)?);
        }
        None => println!("\n  $ keyrotor {}", args.join(" ")),
    }
    Ok(command.status().context("running keyrotor")?.code())
}

/// How a demo ends, once its stack is stopped: how long it took, or its error (exit 1).
pub fn end_demo(outcome: Result<()>, started: std::time::Instant) {
    match outcome {
        Ok(()) => println!(
            "\nLocal stack stopped. Demo finished in {:.0?}.",
            started.elapsed()
        ),
        Err(e) => {
            eprintln!("\ndemo failed: {e:#}");
            std::process::exit(1);
        }
    }
}
