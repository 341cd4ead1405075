//! keyrotor-aws's integration tests against mocked SDK responses, one binary (each module
//! was one, and each linked the SDK again).

mod accounts;
mod adapters;
