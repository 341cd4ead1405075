//! keyrotor's test harness: a moto server of its own on a free loopback port, with a clock
//! that can be moved ([`moto`]), and helpers that seed an account and read it back through
//! the SDK ([`account`]); an in-memory account behind keyrotor's ports with a wrapper that
//! fails chosen calls ([`fake`]), and an in-process interpreter of the state machines'
//! ASL ([`asl`]), for invariant tests that run in milliseconds. Nothing here talks to a real
//! AWS account.

pub mod account;
pub mod asl;
pub mod fake;
pub mod in_process;
pub mod invariants;
pub mod moto;
pub mod policy;
pub mod probe;
pub mod proxy;
pub mod stack;

/// The workspace root (where `.venv/` and `tools/` live).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}
