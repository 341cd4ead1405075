//! keyrotor's test support beyond the local stack (`keyrotor-localstack`): an in-memory
//! account behind keyrotor's ports with a layer that fails chosen calls ([`fake`]), an
//! in-process interpreter of the state machines' ASL ([`asl`]) and the functions wired to
//! both ([`in_process`]), for invariant tests that run in milliseconds; the invariant checker
//! ([`invariants`]); AWS's reports of an exposed key as EventBridge delivers them
//! ([`events`]); and a small IAM policy evaluator for the documents the emulator does not
//! enforce ([`policy`]); and what the local stack's suites share ([`on_stack`]). Nothing here talks to a real AWS account.

pub mod asl;
pub mod events;
pub mod fake;
pub mod in_process;
pub mod invariants;
pub mod on_stack;
pub mod policy;

pub use keyrotor_localstack::workspace_root;
