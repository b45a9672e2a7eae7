//! agentauth: a self-hosted OAuth 2.0 authorization server for AI-agent identities.
//!
//! Dependency rule: `http → oauth, admin → domain, store (traits), crypto, clock, audit`;
//! `store → domain`; `crypto` and `domain` depend on nothing in the crate. `sqlx::` appears only
//! in `store/`, `axum::` only in `http/` and `app.rs`.

pub mod admin;
pub mod app;
pub mod apply;
pub mod audit;
pub mod bootstrap;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod federation;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod oauth;
pub mod store;
pub mod telemetry;
pub mod tls;
