//! keyrotor's local stack: a moto server of its own on a free loopback port, with a clock
//! that can be moved ([`moto`]); the fault proxy in front of it ([`proxy`]); the whole stack
//! with the Lambda gateway, `cargo lambda watch` serving the real function binaries and the
//! two state machines ([`stack`]); seeding an account with test users and reading it back
//! through the SDK ([`account`]); and running a function binary under a minimal Lambda
//! Runtime API ([`probe`]); `infra/template.yaml` deployed on the emulator and run as
//! deployed ([`deployed`]). `make demo` and `make bench` are its binaries. Nothing here talks
//! to a real AWS account.

pub mod account;
pub mod deployed;
pub mod github;
pub mod moto;
pub mod operator;
pub mod organization;
pub mod probe;
pub mod proxy;
pub mod stack;

/// The workspace root (where `.venv/` and `tools/` live).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}
