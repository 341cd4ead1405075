//! keyrotor's shared library: the rotation rules ([`domain`]), the payloads every function
//! reads and writes ([`payload`]), configuration ([`config`]), errors ([`error`]), secret
//! handling ([`secret`]), the ports the steps use ([`ports`]) and the AWS adapters that
//! implement them ([`aws`]).

pub mod aws;
pub mod config;
pub mod domain;
pub mod email;
pub mod error;
pub mod naming;
pub mod ownership;
pub mod payload;
pub mod ports;
pub mod runtime;
pub mod secret;
pub mod state;

pub use config::Config;
pub use error::{Error, ErrorType, Result};
pub use runtime::FromConfig;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
