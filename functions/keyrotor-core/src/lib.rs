//! keyrotor's domain, with no AWS SDK in it: the accounts it works in ([`accounts`]), the rotation rules ([`domain`]), the payloads
//! every function reads and writes ([`payload`]), configuration ([`config`]), errors
//! ([`error`]), secret handling ([`secret`]), names ([`naming`]), the ownership of secrets
//! ([`ownership`]), the ports the steps reach AWS through ([`ports`]) and reading a user's
//! live state through them ([`state`]), and what keyrotor tells other automation: events
//! ([`events`]) and metrics ([`metrics`]). The adapters that implement the ports against AWS
//! are in `keyrotor-aws`; the Lambda runtime loop is in `keyrotor-lambda`.

pub mod accounts;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod email;
pub mod error;
pub mod events;
pub mod exposure;
pub mod html;
pub mod metrics;
pub mod naming;
pub mod ownership;
pub mod payload;
pub mod ports;
pub mod secret;
pub mod state;

pub use config::Config;
pub use error::{Error, ErrorType, Result};
