//! Agents: create, read, list, change, disable, delete (soft), restore; their roles and
//! delegation grants; revoking all their tokens.

use super::views::{AgentView, DelegationView, RolesView};
use super::{
    Actor, AdminError, AdminService, check_description, check_name, check_permission_names,
    check_principals, check_tags, dedup, double_option, parse_time,
};
use crate::domain::agent::RESTORE_WINDOW;
use crate::domain::{Agent, AgentStatus, DelegationGrant, Page, PageRequest, RoleAssignment};
use crate::store::AgentFilter;
use serde::Deserialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// Agents expire after 90 days unless told otherwise.
pub const DEFAULT_AGENT_LIFETIME: time::Duration = time::Duration::days(90);
pub const MAX_TOKEN_TTL: i64 = 24 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub owners: Option<Vec<String>>,
    pub sponsors: Option<Vec<String>>,
    /// RFC 3339; default now + 90 days.
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub token_ttl_seconds: Option<i64>,
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub blueprint_id: Option<String>,
    /// Copy the blueprint's default role assignments and delegation grants to the new agent
    /// (needs `blueprint_id`).
    #[serde(default)]
    pub inherit_defaults: bool,
    /// Only through `apply`: a fixed id for reproducible environments.
    #[serde(skip)]
    pub id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAgent {
    pub name: Option<String>,
    pub description: Option<String>,
    pub owners: Option<Vec<String>>,
    pub sponsors: Option<Vec<String>>,
    pub expires_at: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub token_ttl_seconds: Option<Option<i64>>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRoles {
    pub resource: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutDelegation {
    pub resource: String,
    pub scopes: Vec<String>,
}

/// A grant a new agent takes over from its blueprint.
enum Inherited {
    Roles(PutRoles),
    Delegation(PutDelegation),
}

pub fn check_sponsors(sponsors: &[String]) -> Result<(), AdminError> {
    if sponsors.iter().all(|s| s.trim().is_empty()) {
        return Err(AdminError::invalid(
            "sponsors",
            "at least one sponsor is required: a person or group accountable for the agent",
        ));
    }
    Ok(())
}

fn check_ttl(ttl: Option<i64>) -> Result<(), AdminError> {
    match ttl {
        Some(t) if !(1..=MAX_TOKEN_TTL).contains(&t) => Err(AdminError::invalid(
            "token_ttl_seconds",
            format!("token_ttl_seconds must be between 1 and {MAX_TOKEN_TTL}"),
        )),
        _ => Ok(()),
    }
}

fn clean(list: Vec<String>) -> Vec<String> {
    let mut seen = Vec::new();
    for s in list
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    {
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen
}

impl AdminService {
    pub async fn create_agent(
        &self,
        actor: &Actor,
        req: CreateAgent,
    ) -> Result<AgentView, AdminError> {
        let now = self.now();
        check_name("name", &req.name)?;
        let sponsors = clean(req.sponsors.unwrap_or_default());
        check_sponsors(&sponsors)?;
        check_principals("sponsors", &sponsors)?;
        check_principals("owners", req.owners.as_deref().unwrap_or_default())?;
        check_description(req.description.as_deref().unwrap_or_default())?;
        if let Some(tags) = &req.tags {
            check_tags(tags)?;
        }
        check_ttl(req.token_ttl_seconds)?;
        let expires_at = match &req.expires_at {
            Some(t) => parse_time("expires_at", t)?,
            None => now + DEFAULT_AGENT_LIFETIME,
        };
        if expires_at <= now {
            return Err(AdminError::invalid(
                "expires_at",
                "expires_at must be in the future",
            ));
        }
        let blueprint = match &req.blueprint_id {
            Some(b) => {
                let id = Uuid::parse_str(b).map_err(|_| {
                    AdminError::invalid("blueprint_id", "blueprint_id must be a UUID")
                })?;
                match self.store.get_blueprint(id).await? {
                    Some(bp) if bp.deleted_at.is_none() => Some(bp),
                    _ => {
                        return Err(AdminError::invalid(
                            "blueprint_id",
                            format!("no blueprint has id {id}"),
                        ));
                    }
                }
            }
            None => None,
        };
        let inherited = match (&blueprint, req.inherit_defaults) {
            (Some(bp), true) => self.blueprint_defaults(bp).await?,
            (None, true) => {
                return Err(AdminError::invalid(
                    "inherit_defaults",
                    "inherit_defaults needs a blueprint_id to inherit from",
                ));
            }
            (_, false) => Vec::new(),
        };
        let blueprint_id = blueprint.map(|b| b.id);
        let agent = Agent {
            id: req.id.unwrap_or_else(Uuid::now_v7),
            name: req.name.trim().to_owned(),
            description: req.description.unwrap_or_default(),
            owners: clean(req.owners.unwrap_or_default()),
            sponsors,
            disabled: false,
            deleted_at: None,
            expires_at,
            token_ttl_seconds: req.token_ttl_seconds,
            tags: req.tags.unwrap_or_default(),
            blueprint_id,
            last_active_at: None,
            tokens_revoked_before_ms: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_agent(&agent).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => AdminError::Conflict(format!(
                "an agent named {:?} (or with this id) already exists",
                agent.name
            )),
            other => other.into(),
        })?;
        let view = AgentView::of(&agent, now);
        self.record_change(
            actor,
            "agent.create",
            Some(agent.id),
            None,
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        let id = agent.id.to_string();
        for grant in inherited {
            match grant {
                Inherited::Roles(req) => self.put_roles(actor, &id, req).await.map(|_| ())?,
                Inherited::Delegation(req) => {
                    self.put_delegation(actor, &id, req).await.map(|_| ())?
                }
            }
        }
        Ok(view)
    }

    /// A blueprint's default role assignments and delegation grants, checked against the
    /// resources as they are now, so that inheriting cannot fail half-way.
    async fn blueprint_defaults(
        &self,
        blueprint: &crate::domain::Blueprint,
    ) -> Result<Vec<Inherited>, AdminError> {
        let mut out = Vec::new();
        for (resource, roles) in &blueprint.default_roles {
            self.still_defined(resource, roles, "role", |r| &r.roles)
                .await?;
            out.push(Inherited::Roles(PutRoles {
                resource: resource.clone(),
                roles: roles.clone(),
            }));
        }
        for (resource, scopes) in &blueprint.default_delegations {
            self.still_defined(resource, scopes, "scope", |r| &r.scopes)
                .await?;
            out.push(Inherited::Delegation(PutDelegation {
                resource: resource.clone(),
                scopes: scopes.clone(),
            }));
        }
        Ok(out)
    }

    /// A blueprint's defaults go stale when their resource, or one of their roles or scopes,
    /// is removed afterwards: the request is fine, the stored state conflicts with it (409).
    async fn still_defined(
        &self,
        identifier: &str,
        names: &[String],
        kind: &str,
        defined: impl Fn(&crate::domain::Resource) -> &Vec<String>,
    ) -> Result<(), AdminError> {
        let stale = match self.store.get_resource_by_identifier(identifier).await? {
            None => Some(format!("{identifier} is no longer registered")),
            Some(r) => names
                .iter()
                .find(|n| !defined(&r).contains(n))
                .map(|n| format!("{kind} {n} is no longer defined on {identifier}")),
        };
        match stale {
            Some(why) => Err(AdminError::Conflict(format!(
                "the blueprint's defaults cannot be inherited: {why}"
            ))),
            None => Ok(()),
        }
    }

    pub(super) async fn load_agent(&self, id: &str) -> Result<Agent, AdminError> {
        let id = super::parse_id("agent", id)?;
        self.store
            .get_agent(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no agent has id {id}")))
    }

    /// An agent that may take changes: a deleted one must be restored first, so that nothing
    /// is granted to an identity that cannot use it (or that a restore would bring back).
    pub(super) async fn load_live_agent(&self, id: &str) -> Result<Agent, AdminError> {
        let agent = self.load_agent(id).await?;
        if agent.deleted_at.is_some() {
            return Err(AdminError::Conflict(
                "the agent is deleted: restore it first".into(),
            ));
        }
        Ok(agent)
    }

    pub async fn get_agent(&self, id: &str) -> Result<AgentView, AdminError> {
        Ok(AgentView::of(&self.load_agent(id).await?, self.now()))
    }

    pub async fn list_agents(
        &self,
        filter: AgentFilter,
        page: PageRequest,
    ) -> Result<Page<AgentView>, AdminError> {
        let now = self.now();
        let agents = self.store.list_agents(&filter, now, &page).await?;
        let next_cursor = (agents.len() == page.limit as usize)
            .then(|| agents.last().map(|a| a.id.to_string()))
            .flatten();
        Ok(Page {
            items: agents.iter().map(|a| AgentView::of(a, now)).collect(),
            next_cursor,
        })
    }

    /// Applies a change to a stored agent, then saves, invalidates and audits it.
    async fn change_agent(
        &self,
        actor: &Actor,
        id: &str,
        action: &str,
        change: impl FnOnce(&mut Agent, OffsetDateTime) -> Result<(), AdminError>,
    ) -> Result<AgentView, AdminError> {
        let now = self.now();
        let mut agent = self.load_agent(id).await?;
        let before = AgentView::of(&agent, now);
        change(&mut agent, now)?;
        agent.updated_at = now;
        self.store.update_agent(&agent).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                AdminError::Conflict(format!("an agent named {:?} already exists", agent.name))
            }
            other => other.into(),
        })?;
        self.directory.invalidate_agent(agent.id);
        let after = AgentView::of(&agent, now);
        self.record_change(
            actor,
            action,
            Some(agent.id),
            Some(serde_json::to_value(&before).unwrap_or_default()),
            Some(serde_json::to_value(&after).unwrap_or_default()),
        )
        .await?;
        Ok(after)
    }

    pub async fn patch_agent(
        &self,
        actor: &Actor,
        id: &str,
        patch: PatchAgent,
    ) -> Result<AgentView, AdminError> {
        if let Some(name) = &patch.name {
            check_name("name", name)?;
        }
        let sponsors = patch.sponsors.map(clean);
        if let Some(s) = &sponsors {
            check_sponsors(s)?;
            check_principals("sponsors", s)?;
        }
        if let Some(o) = &patch.owners {
            check_principals("owners", o)?;
        }
        if let Some(d) = &patch.description {
            check_description(d)?;
        }
        if let Some(t) = &patch.tags {
            check_tags(t)?;
        }
        check_ttl(patch.token_ttl_seconds.flatten())?;
        let expires_at = patch
            .expires_at
            .as_deref()
            .map(|t| parse_time("expires_at", t))
            .transpose()?;
        self.change_agent(actor, id, "agent.update", |a, _| {
            if a.deleted_at.is_some() {
                return Err(AdminError::Conflict(
                    "the agent is deleted: restore it first".into(),
                ));
            }
            if let Some(n) = patch.name {
                a.name = n.trim().to_owned();
            }
            if let Some(d) = patch.description {
                a.description = d;
            }
            if let Some(o) = patch.owners {
                a.owners = clean(o);
            }
            if let Some(s) = sponsors {
                a.sponsors = s;
            }
            if let Some(e) = expires_at {
                a.expires_at = e;
            }
            if let Some(t) = patch.token_ttl_seconds {
                a.token_ttl_seconds = t;
            }
            if let Some(t) = patch.tags {
                a.tags = t;
            }
            Ok(())
        })
        .await
    }

    /// Disabling revokes every token the agent holds (Asgardeo's "Block Agent").
    pub async fn disable_agent(&self, actor: &Actor, id: &str) -> Result<AgentView, AdminError> {
        let revoked_at = self.clock.now();
        self.change_agent(actor, id, "agent.disable", |a, _| {
            if a.deleted_at.is_some() {
                return Err(AdminError::Conflict("the agent is deleted".into()));
            }
            a.disabled = true;
            revoke_all(a, revoked_at);
            Ok(())
        })
        .await
    }

    /// Enabling does not bring back tokens revoked by the disable.
    pub async fn enable_agent(&self, actor: &Actor, id: &str) -> Result<AgentView, AdminError> {
        self.change_agent(actor, id, "agent.enable", |a, _| {
            if a.deleted_at.is_some() {
                return Err(AdminError::Conflict(
                    "the agent is deleted: restore it first".into(),
                ));
            }
            a.disabled = false;
            Ok(())
        })
        .await
    }

    pub async fn delete_agent(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        self.delete_agent_at(actor, id, None).await
    }

    /// Deletes an agent, stamped `at` when given (a blueprint's cascade stamps its agents with
    /// its own deletion instant, which is how its restore knows them).
    pub(super) async fn delete_agent_at(
        &self,
        actor: &Actor,
        id: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<(), AdminError> {
        let revoked_at = self.clock.now();
        self.change_agent(actor, id, "agent.delete", |a, now| {
            if a.deleted_at.is_none() {
                a.deleted_at = Some(at.unwrap_or(now));
            }
            revoke_all(a, revoked_at);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn restore_agent(&self, actor: &Actor, id: &str) -> Result<AgentView, AdminError> {
        self.change_agent(actor, id, "agent.restore", |a, now| match a.deleted_at {
            None => Err(AdminError::Conflict("the agent is not deleted".into())),
            Some(at) if at + RESTORE_WINDOW < now => Err(AdminError::Conflict(
                "the agent was deleted more than 30 days ago and can no longer be restored".into(),
            )),
            Some(_) => {
                a.deleted_at = None;
                Ok(())
            }
        })
        .await
    }

    pub async fn revoke_agent_tokens(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        let revoked_at = self.clock.now();
        self.change_agent(actor, id, "agent.revoke_tokens", |a, _| {
            revoke_all(a, revoked_at);
            Ok(())
        })
        .await
        .map(|_| ())
    }

    async fn resource_named(
        &self,
        identifier: &str,
    ) -> Result<crate::domain::Resource, AdminError> {
        self.store
            .get_resource_by_identifier(identifier)
            .await?
            .ok_or_else(|| {
                AdminError::invalid(
                    "resource",
                    format!("no resource is registered as {identifier}"),
                )
            })
    }

    pub async fn put_roles(
        &self,
        actor: &Actor,
        id: &str,
        req: PutRoles,
    ) -> Result<RolesView, AdminError> {
        let agent = self.load_live_agent(id).await?;
        let resource = self.resource_named(&req.resource).await?;
        let roles = dedup(req.roles);
        check_permission_names("roles", &roles)?;
        if let Some(r) = roles.iter().find(|r| !resource.roles.contains(r)) {
            return Err(AdminError::invalid(
                "roles",
                format!("{} defines no role {r}", resource.identifier),
            ));
        }
        let before = self.store.roles_on(agent.id, resource.id).await?;
        self.store
            .set_roles(&RoleAssignment {
                agent_id: agent.id,
                resource_id: resource.id,
                roles: roles.clone(),
            })
            .await?;
        self.directory.invalidate_agent(agent.id);
        let view = RolesView {
            resource: resource.identifier,
            roles,
        };
        self.record_change(
            actor,
            "agent.roles.set",
            Some(agent.id),
            Some(serde_json::json!({"resource": view.resource, "roles": before})),
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(view)
    }

    pub async fn list_roles(&self, id: &str) -> Result<Vec<RolesView>, AdminError> {
        let agent = self.load_agent(id).await?;
        let mut out = Vec::new();
        for a in self.store.roles_of(agent.id).await? {
            if let Some(r) = self.store.get_resource(a.resource_id).await? {
                out.push(RolesView {
                    resource: r.identifier,
                    roles: a.roles,
                });
            }
        }
        Ok(out)
    }

    pub async fn put_delegation(
        &self,
        actor: &Actor,
        id: &str,
        req: PutDelegation,
    ) -> Result<DelegationView, AdminError> {
        let agent = self.load_live_agent(id).await?;
        let resource = self.resource_named(&req.resource).await?;
        let scopes = dedup(req.scopes);
        check_permission_names("scopes", &scopes)?;
        if let Some(s) = scopes.iter().find(|s| !resource.scopes.contains(s)) {
            return Err(AdminError::invalid(
                "scopes",
                format!("{} defines no scope {s}", resource.identifier),
            ));
        }
        let before = self.store.delegation_on(agent.id, resource.id).await?;
        self.store
            .set_delegation(&DelegationGrant {
                agent_id: agent.id,
                resource_id: resource.id,
                scopes: scopes.clone(),
            })
            .await?;
        self.directory.invalidate_agent(agent.id);
        let view = DelegationView {
            resource: resource.identifier,
            scopes,
        };
        self.record_change(
            actor,
            "agent.delegations.set",
            Some(agent.id),
            Some(serde_json::json!({"resource": view.resource, "scopes": before})),
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(view)
    }

    pub async fn list_delegations(&self, id: &str) -> Result<Vec<DelegationView>, AdminError> {
        let agent = self.load_agent(id).await?;
        let mut out = Vec::new();
        for g in self.store.delegations_of(agent.id).await? {
            if let Some(r) = self.store.get_resource(g.resource_id).await? {
                out.push(DelegationView {
                    resource: r.identifier,
                    scopes: g.scopes,
                });
            }
        }
        Ok(out)
    }
}

/// Every token issued until `now` (and within its millisecond) is dead. `now` is the clock's
/// precise instant, not the whole second the admin records keep: token ids carry their issue
/// instant to the millisecond.
fn revoke_all(agent: &mut Agent, now: OffsetDateTime) {
    agent.tokens_revoked_before_ms = crate::clock::unix_millis(now) + 1;
}

pub fn status_filter(text: &str) -> Result<AgentStatus, AdminError> {
    text.parse()
        .map_err(|e: String| AdminError::invalid("status", e))
}
