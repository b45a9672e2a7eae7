//! Failed client authentications are limited per client id and per source address (SPEC §5):
//! a token bucket per key loses a token on each failure and refills over time. An empty bucket
//! refuses further attempts — right or wrong — until it refills, so guessing is slow, and a
//! client whose correct credential arrives after the window is never locked out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed in a burst.
    pub burst: f64,
    /// Failures forgiven per second.
    pub refill_per_second: f64,
    /// Whether loopback addresses are limited too. Off by default: on a laptop or in CI every
    /// client is 127.0.0.1, and one noisy test would throttle all of them.
    pub limit_loopback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Client(String),
    Address(IpAddr),
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct FailureThrottle {
    policy: ThrottlePolicy,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

impl FailureThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn counted(&self, address: Option<IpAddr>) -> Option<IpAddr> {
        address.filter(|a| self.policy.limit_loopback || !a.is_loopback())
    }

    fn level(&self, b: &Bucket, now: Instant) -> f64 {
        (b.tokens + now.duration_since(b.at).as_secs_f64() * self.policy.refill_per_second)
            .min(self.policy.burst)
    }

    /// `Some(seconds to wait)` when the client id or the address has no attempts left.
    pub fn blocked(&self, client: Option<&str>, address: Option<IpAddr>) -> Option<u64> {
        let address = self.counted(address);
        let now = Instant::now();
        let buckets = self.buckets.lock().ok()?;
        let keys = client
            .map(|c| Key::Client(c.to_owned()))
            .into_iter()
            .chain(address.map(Key::Address));
        keys.filter_map(|k| buckets.get(&k))
            .filter_map(|b| {
                let level = self.level(b, now);
                (level < 1.0).then(|| {
                    ((1.0 - level) / self.policy.refill_per_second)
                        .ceil()
                        .max(1.0) as u64
                })
            })
            .max()
    }

    /// Records a failed attempt.
    pub fn failed(&self, client: Option<&str>, address: Option<IpAddr>) {
        let address = self.counted(address);
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return;
        };
        if buckets.len() >= MAX_KEYS {
            // Forget the buckets that have refilled; if that is not enough, start over.
            let burst = self.policy.burst;
            let rate = self.policy.refill_per_second;
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let keys = client
            .map(|c| Key::Client(c.chars().take(100).collect()))
            .into_iter()
            .chain(address.map(Key::Address));
        for k in keys {
            let level = buckets
                .get(&k)
                .map(|b| self.level(b, now))
                .unwrap_or(self.policy.burst);
            buckets.insert(
                k,
                Bucket {
                    tokens: (level - 1.0).max(0.0),
                    at: now,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failures_blocks_until_refilled() {
        let t = FailureThrottle::new(ThrottlePolicy {
            burst: 3.0,
            refill_per_second: 1000.0,
            limit_loopback: true,
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(t.blocked(Some("a"), Some(ip)), None);
        for _ in 0..3 {
            t.failed(Some("a"), Some(ip));
        }
        // Refills at 1000/s: after a short sleep the client may try again.
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(t.blocked(Some("a"), Some(ip)), None);
    }

    #[test]
    fn an_empty_bucket_blocks_the_client_and_the_address() {
        let t = FailureThrottle::new(ThrottlePolicy {
            burst: 2.0,
            refill_per_second: 0.01,
            limit_loopback: true,
        });
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        t.failed(Some("a"), Some(ip));
        t.failed(Some("a"), Some(ip));
        assert!(t.blocked(Some("a"), None).is_some());
        assert!(t.blocked(Some("other"), Some(ip)).is_some());
        assert_eq!(t.blocked(Some("other"), None), None);
    }
}
