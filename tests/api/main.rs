//! The black-box suite: ONE test binary, a module per feature. Every test runs on SQLite and,
//! when `AGENTAUTH_TEST_POSTGRES_URL` is set, on PostgreSQL.

// The whole binary is test code, helpers included: failing loudly is the point (clippy.toml
// allows the same inside unit tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admin_agents;
mod admin_api;
mod admin_errors;
mod audit;
mod cli;
mod client_credentials;
mod client_refusals;
mod delegation_chains;
mod discovery;
mod entra;
mod fake_idp;
mod federation;
mod introspection;
mod key_rotation;
mod lifecycle;
mod on_behalf_of;
mod operations;
mod private_key_jwt;
mod replicas;
mod server_process;
mod signature;
mod store_conformance;
mod token_errors;
mod token_exchange;
