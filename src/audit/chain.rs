//! The hash chain: each event's hash covers the previous hash, its sequence number and its
//! content, so editing, inserting or deleting a row breaks every later link.

use crate::crypto::digest::sha256_hex_of;
use crate::domain::{AuditEvent, AuditRecord, PreparedEvent};

/// SHA-256 over `prev_hash`, `seq` and the event's canonical JSON (keys sorted), each followed
/// by a newline but the last.
pub fn chain_hash(prev_hash: &str, seq: i64, event: &AuditEvent) -> String {
    link(prev_hash, seq, &canonical_json(event))
}

/// [`chain_hash`] of an event already serialized by [`prepare`].
pub fn link(prev_hash: &str, seq: i64, canonical_json: &[u8]) -> String {
    let seq = seq.to_string();
    sha256_hex_of(&[
        prev_hash.as_bytes(),
        b"\n",
        seq.as_bytes(),
        b"\n",
        canonical_json,
    ])
}

/// Serializes an event once, where it is recorded: the writer, which links events one after
/// the other, then only hashes bytes.
pub fn prepare(event: AuditEvent) -> PreparedEvent {
    let canonical_json = canonical_json(&event);
    let detail_json = detail_of(&canonical_json).unwrap_or_else(|| event.detail.to_string());
    PreparedEvent {
        canonical_json,
        detail_json,
        event,
    }
}

fn canonical_json(event: &AuditEvent) -> Vec<u8> {
    // An event always serializes: its detail is a JSON value with string keys.
    serde_json::to_vec(event).unwrap_or_default()
}

/// The detail's JSON, cut from the event's: `detail` is the event's last member, so its JSON runs
/// from its key to the closing brace. The first `"detail":` is that key: the members before it
/// have other names, and a `"` inside a string value is escaped.
fn detail_of(canonical_json: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"detail\":";
    let start = canonical_json.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let end = canonical_json.len().checked_sub(1)?;
    String::from_utf8(canonical_json.get(start..end)?.to_vec()).ok()
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("audit chain broken at seq {seq}: {problem}")]
pub struct ChainBreak {
    pub seq: i64,
    pub problem: String,
}

/// The hash every chain starts from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Checks records given in `seq` order, starting at seq 1. Returns how many were checked.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<i64, ChainBreak> {
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_owned();
    for r in records {
        if r.seq != expected_seq {
            return Err(ChainBreak {
                seq: r.seq,
                problem: format!("expected seq {expected_seq}: rows are missing"),
            });
        }
        if r.prev_hash != prev {
            return Err(ChainBreak {
                seq: r.seq,
                problem: "prev_hash does not match the previous row".into(),
            });
        }
        if chain_hash(&prev, r.seq, &r.event) != r.hash {
            return Err(ChainBreak {
                seq: r.seq,
                problem: "the row was modified (hash mismatch)".into(),
            });
        }
        prev = r.hash.clone();
        expected_seq += 1;
    }
    Ok(expected_seq - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::event;
    use crate::domain::Outcome;
    use serde_json::json;
    use time::macros::datetime;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let e = event(datetime!(2026-01-01 0:00 UTC), "a", "x", Outcome::Success);
                let hash = chain_hash(&prev, seq, &e);
                let r = AuditRecord {
                    seq,
                    event: e,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn the_hash_covers_the_previous_hash_the_seq_and_the_json() {
        let e = event(datetime!(2026-01-01 0:00 UTC), "a", "x", Outcome::Success);
        let json = serde_json::to_string(&e).unwrap();
        let expected =
            crate::crypto::digest::sha256_hex(format!("{GENESIS}\n7\n{json}").as_bytes());
        assert_eq!(chain_hash(GENESIS, 7, &e), expected);
        let prepared = prepare(e.clone());
        assert_eq!(link(GENESIS, 7, &prepared.canonical_json), expected);
        assert_eq!(
            prepared.detail_json,
            serde_json::to_string(&e.detail).unwrap()
        );
    }

    #[rstest::rstest]
    #[case::empty(json!({}))]
    #[case::nested_detail_key(json!({"detail": {"detail": "x"}, "a": [1, "\"detail\":"]}))]
    #[case::unicode(json!({"who": "Zoë \u{1F600}", "n": -1.5, "none": null}))]
    fn the_stored_detail_is_the_detail_serialized(#[case] detail: serde_json::Value) {
        let mut e = event(
            datetime!(2026-01-01 0:00 UTC),
            "\"detail\":",
            "x",
            Outcome::Failure,
        );
        e.reason = Some("\"detail\":{}".into());
        e.detail = detail;
        let prepared = prepare(e.clone());
        assert_eq!(
            prepared.detail_json,
            serde_json::to_string(&e.detail).unwrap()
        );
        let parsed: serde_json::Value = serde_json::from_str(&prepared.detail_json).unwrap();
        assert_eq!(parsed, e.detail);
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(5)), Ok(5));
    }

    #[test]
    fn an_edited_row_is_found() {
        let mut c = chain(5);
        c[2].event.actor = "mallory".into();
        assert_eq!(verify_chain(&c).unwrap_err().seq, 3);
    }

    #[test]
    fn a_deleted_row_is_found() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify_chain(&c).unwrap_err().seq, 3);
    }
}
