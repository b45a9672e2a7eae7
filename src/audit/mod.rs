//! The audit trail (SPEC §10): events, their SHA-256 hash chain, and the group-commit writer.

mod chain;
mod redact;
mod writer;

pub use chain::{ChainBreak, GENESIS, chain_hash, link, prepare, verify_chain};
pub use redact::elide_tokens;
pub use writer::{AuditError, AuditLog};

use crate::domain::{AuditEvent, Outcome};
use serde_json::Value;
use time::OffsetDateTime;

/// Starts an event; `at` is cut to milliseconds, the precision the store keeps and hashes.
pub fn event(now: OffsetDateTime, actor: &str, action: &str, outcome: Outcome) -> AuditEvent {
    let ms = crate::clock::unix_millis(now);
    AuditEvent {
        id: uuid::Uuid::now_v7(),
        at: crate::clock::from_unix_millis(ms),
        actor: actor.to_owned(),
        action: action.to_owned(),
        outcome,
        agent_id: None,
        reason: None,
        detail: Value::Object(Default::default()),
    }
}

/// Starts an event an agent caused about itself (a token request, an introspection, a
/// revocation): it is both the actor and the agent concerned, its id formatted once.
pub fn agent_event(
    now: OffsetDateTime,
    agent: uuid::Uuid,
    action: &str,
    outcome: Outcome,
) -> AuditEvent {
    let id = agent.to_string();
    AuditEvent {
        agent_id: Some(id.clone()),
        ..event(now, &id, action, outcome)
    }
}

/// Builder helpers so call sites read as one sentence.
pub trait EventExt {
    fn agent(self, agent_id: impl ToString) -> Self;
    fn reason(self, code: &str, explanation: impl Into<String>) -> Self;
    fn with(self, key: &str, value: impl Into<Value>) -> Self;
}

impl EventExt for AuditEvent {
    fn agent(mut self, agent_id: impl ToString) -> Self {
        self.agent_id = Some(agent_id.to_string());
        self
    }

    fn reason(mut self, code: &str, explanation: impl Into<String>) -> Self {
        self.reason = Some(code.to_owned());
        self.with("explanation", elide_tokens(&explanation.into()))
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.detail {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_agent_event_names_the_agent_as_actor_and_subject() {
        let agent = uuid::Uuid::now_v7();
        let at = datetime!(2026-01-01 0:00:00.123456 UTC);
        let e = agent_event(at, agent, "token.issue", Outcome::Success);
        let expected = event(at, &agent.to_string(), "token.issue", Outcome::Success).agent(agent);
        assert_eq!(
            e,
            AuditEvent {
                id: e.id,
                ..expected
            }
        );
        assert_eq!(e.agent_id.as_deref(), Some(agent.to_string().as_str()));
    }
}
