//! Cached lookups for the token endpoint's hot path: agents, credentials, resources and role
//! assignments. Entries live at most `ttl` (one second by default), so a change made through
//! another replica shows within that bound; changes made here invalidate at once.

use crate::domain::{Agent, Credential, Resource, TrustedIssuer};
use crate::metrics::CacheName;
use crate::store::{SharedStore, StoreResult};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

const MAX_ENTRIES: usize = 100_000;

struct TtlCache<K, V> {
    ttl: Duration,
    map: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: RwLock::new(HashMap::new()),
        }
    }

    fn get<Q: Eq + Hash + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        let map = self.map.read().ok()?;
        let (at, v) = map.get(key)?;
        (at.elapsed() < self.ttl).then(|| v.clone())
    }

    fn put(&self, key: K, value: V) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(key, (Instant::now(), value));
        }
    }

    fn remove_where(&self, pred: impl Fn(&K) -> bool) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|k, _| !pred(k));
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }
}

/// The cached directory of who exists and what they hold.
pub struct Directory {
    store: SharedStore,
    metrics: Arc<crate::metrics::Metrics>,
    agents: TtlCache<Uuid, Option<Arc<Agent>>>,
    credentials: TtlCache<Uuid, Arc<Vec<Credential>>>,
    resources: TtlCache<String, Option<Arc<Resource>>>,
    roles: TtlCache<(Uuid, Uuid), Arc<Vec<String>>>,
    delegations: TtlCache<(Uuid, Uuid), Arc<Vec<String>>>,
    issuers: TtlCache<String, Option<Arc<TrustedIssuer>>>,
}

impl Directory {
    pub fn new(store: SharedStore, ttl: Duration, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            store,
            metrics,
            agents: TtlCache::new(ttl),
            credentials: TtlCache::new(ttl),
            resources: TtlCache::new(ttl),
            roles: TtlCache::new(ttl),
            delegations: TtlCache::new(ttl),
            issuers: TtlCache::new(ttl),
        }
    }

    pub async fn agent(&self, id: Uuid) -> StoreResult<Option<Arc<Agent>>> {
        if let Some(hit) = self.agents.get(&id) {
            self.metrics.cache_lookup(CacheName::Agents, true);
            return Ok(hit);
        }
        self.metrics.cache_lookup(CacheName::Agents, false);
        let agent = self.store.get_agent(id).await?.map(Arc::new);
        self.agents.put(id, agent.clone());
        Ok(agent)
    }

    /// Credentials of an agent or blueprint.
    pub async fn credentials(&self, owner: Uuid) -> StoreResult<Arc<Vec<Credential>>> {
        if let Some(hit) = self.credentials.get(&owner) {
            self.metrics.cache_lookup(CacheName::Credentials, true);
            return Ok(hit);
        }
        self.metrics.cache_lookup(CacheName::Credentials, false);
        let creds = Arc::new(self.store.list_credentials(owner).await?);
        self.credentials.put(owner, creds.clone());
        Ok(creds)
    }

    pub async fn resource(&self, identifier: &str) -> StoreResult<Option<Arc<Resource>>> {
        if let Some(hit) = self.resources.get(identifier) {
            self.metrics.cache_lookup(CacheName::Resources, true);
            return Ok(hit);
        }
        self.metrics.cache_lookup(CacheName::Resources, false);
        let resource = self
            .store
            .get_resource_by_identifier(identifier)
            .await?
            .map(Arc::new);
        self.resources.put(identifier.to_owned(), resource.clone());
        Ok(resource)
    }

    pub async fn roles_on(&self, agent: Uuid, resource: Uuid) -> StoreResult<Arc<Vec<String>>> {
        if let Some(hit) = self.roles.get(&(agent, resource)) {
            self.metrics.cache_lookup(CacheName::Roles, true);
            return Ok(hit);
        }
        self.metrics.cache_lookup(CacheName::Roles, false);
        let roles = Arc::new(self.store.roles_on(agent, resource).await?);
        self.roles.put((agent, resource), roles.clone());
        Ok(roles)
    }

    pub async fn delegation_on(
        &self,
        agent: Uuid,
        resource: Uuid,
    ) -> StoreResult<Arc<Vec<String>>> {
        if let Some(hit) = self.delegations.get(&(agent, resource)) {
            self.metrics.cache_lookup(CacheName::Delegations, true);
            return Ok(hit);
        }
        self.metrics.cache_lookup(CacheName::Delegations, false);
        let scopes = Arc::new(self.store.delegation_on(agent, resource).await?);
        self.delegations.put((agent, resource), scopes.clone());
        Ok(scopes)
    }

    /// A trusted issuer by its `iss`.
    pub async fn issuer(&self, iss: &str) -> StoreResult<Option<Arc<TrustedIssuer>>> {
        if let Some(hit) = self.issuers.get(iss) {
            self.metrics.cache_lookup(CacheName::Issuers, true);
            return Ok(hit);
        }
        self.metrics.cache_lookup(CacheName::Issuers, false);
        let issuer = self.store.get_issuer_by_name(iss).await?.map(Arc::new);
        self.issuers.put(iss.to_owned(), issuer.clone());
        Ok(issuer)
    }

    pub fn invalidate_issuers(&self) {
        self.issuers.clear();
    }

    pub fn invalidate_agent(&self, id: Uuid) {
        self.delegations.remove_where(|(a, _)| *a == id);
        self.agents.remove_where(|k| *k == id);
        self.credentials.remove_where(|k| *k == id);
        self.roles.remove_where(|(a, _)| *a == id);
    }

    pub fn invalidate_resources(&self) {
        self.resources.clear();
        self.roles.clear();
        self.delegations.clear();
    }

    pub fn invalidate_all(&self) {
        self.agents.clear();
        self.credentials.clear();
        self.invalidate_resources();
    }
}
