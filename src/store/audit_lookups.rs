//! SQLite's audit lookups, by agent and by time: tables the hot path's writer fills in bulk
//! rather than indexes every commit updates (migration 0004 says why). A listing filtered by
//! agent or time reads the rows they cover through them, and the rows committed since
//! (`seq > audit_indexed.upto`, a few tens of milliseconds of events) directly.

use super::sql::AuditColumns;

/// Adds the rows committed since the last fill to both lookups, in one transaction with the
/// move of `upto` (the caller's): a reader sees each row through exactly one path. Rows a
/// tampering hand deleted can lower `max(seq)`; `upto` never goes back, and a row already
/// looked up is not added twice.
pub(super) const FILL: [&str; 3] = [
    "INSERT OR IGNORE INTO audit_by_agent (agent_id, seq) \
     SELECT agent_id, seq FROM audit_events \
     WHERE seq > (SELECT upto FROM audit_indexed) AND agent_id IS NOT NULL",
    "INSERT OR IGNORE INTO audit_by_time (at_ms, seq) \
     SELECT at_ms, seq FROM audit_events WHERE seq > (SELECT upto FROM audit_indexed)",
    "UPDATE audit_indexed SET upto = max(upto, (SELECT COALESCE(max(seq), 0) FROM audit_events))",
];

/// A lookup table joined to the rows it points at.
pub(super) struct Lookup {
    pub from: &'static str,
    pub columns: AuditColumns,
}

pub(super) const BY_AGENT: Lookup = Lookup {
    from: "audit_by_agent l JOIN audit_events e ON e.seq = l.seq",
    columns: AuditColumns {
        seq: "l.seq",
        agent_id: "l.agent_id",
        at_ms: "e.at_ms",
    },
};

pub(super) const BY_TIME: Lookup = Lookup {
    from: "audit_by_time l JOIN audit_events e ON e.seq = l.seq",
    columns: AuditColumns {
        seq: "l.seq",
        agent_id: "e.agent_id",
        at_ms: "l.at_ms",
    },
};

/// The rows the lookups do not cover yet, the condition to add to a select of `audit_events e`.
pub(super) const NOT_YET_LOOKED_UP: &str = " AND e.seq > (SELECT upto FROM audit_indexed)";
