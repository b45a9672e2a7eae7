//! Pure domain types: no I/O, no framework. Everything else speaks in these.

pub mod agent;
pub mod audit;
pub mod credential;
pub mod issuer;
pub mod page;
pub mod resource;
pub mod scope;

pub use agent::{Agent, AgentStatus, Blueprint};
pub use audit::{AuditEvent, AuditRecord, Outcome, PreparedEvent};
pub use credential::{Credential, CredentialKind};
pub use issuer::{IssuerUse, TrustedIssuer};
pub use page::{Page, PageRequest};
pub use resource::{DelegationGrant, Resource, RoleAssignment, TokenProfile, UserAssignment};
pub use scope::ScopeSet;
