//! Blueprints (Entra Agent ID's agent identity blueprints): templates whose agents may inherit
//! their default roles and delegations. Deleting one soft-deletes its agents; restoring it
//! restores them.

use super::agents::check_sponsors;
use super::views::BlueprintView;
use super::{
    Actor, AdminError, AdminService, check_description, check_name, check_permission_names,
    check_principals, dedup,
};
use crate::domain::{Blueprint, Page, PageRequest};
use crate::store::AgentFilter;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultRoles {
    pub resource: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultScopes {
    pub resource: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBlueprint {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub owners: Option<Vec<String>>,
    pub sponsors: Option<Vec<String>>,
    #[serde(default)]
    pub default_roles: Vec<DefaultRoles>,
    #[serde(default)]
    pub default_delegations: Vec<DefaultScopes>,
    #[serde(skip)]
    pub id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBlueprint {
    pub name: Option<String>,
    pub description: Option<String>,
    pub owners: Option<Vec<String>>,
    pub sponsors: Option<Vec<String>>,
    pub default_roles: Option<Vec<DefaultRoles>>,
    pub default_delegations: Option<Vec<DefaultScopes>>,
    pub disabled: Option<bool>,
}

impl AdminService {
    async fn check_defaults(
        &self,
        roles: &[DefaultRoles],
        delegations: &[DefaultScopes],
    ) -> Result<(BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>), AdminError> {
        let mut r = BTreeMap::new();
        for d in roles {
            let res = self
                .store
                .get_resource_by_identifier(&d.resource)
                .await?
                .ok_or_else(|| {
                    AdminError::invalid(
                        "default_roles",
                        format!("no resource is registered as {}", d.resource),
                    )
                })?;
            let roles = dedup(d.roles.clone());
            check_permission_names("default_roles", &roles)?;
            if let Some(x) = roles.iter().find(|x| !res.roles.contains(x)) {
                return Err(AdminError::invalid(
                    "default_roles",
                    format!("{} defines no role {x}", d.resource),
                ));
            }
            r.insert(d.resource.clone(), roles);
        }
        let mut s = BTreeMap::new();
        for d in delegations {
            let res = self
                .store
                .get_resource_by_identifier(&d.resource)
                .await?
                .ok_or_else(|| {
                    AdminError::invalid(
                        "default_delegations",
                        format!("no resource is registered as {}", d.resource),
                    )
                })?;
            let scopes = dedup(d.scopes.clone());
            check_permission_names("default_delegations", &scopes)?;
            if let Some(x) = scopes.iter().find(|x| !res.scopes.contains(x)) {
                return Err(AdminError::invalid(
                    "default_delegations",
                    format!("{} defines no scope {x}", d.resource),
                ));
            }
            s.insert(d.resource.clone(), scopes);
        }
        Ok((r, s))
    }

    pub async fn create_blueprint(
        &self,
        actor: &Actor,
        req: CreateBlueprint,
    ) -> Result<BlueprintView, AdminError> {
        let now = self.now();
        check_name("name", &req.name)?;
        let sponsors: Vec<String> = req
            .sponsors
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .collect();
        check_sponsors(&sponsors)?;
        check_principals("sponsors", &sponsors)?;
        check_principals("owners", req.owners.as_deref().unwrap_or_default())?;
        check_description(req.description.as_deref().unwrap_or_default())?;
        let (default_roles, default_delegations) = self
            .check_defaults(&req.default_roles, &req.default_delegations)
            .await?;
        let b = Blueprint {
            id: req.id.unwrap_or_else(Uuid::now_v7),
            name: req.name.trim().to_owned(),
            description: req.description.unwrap_or_default(),
            owners: req
                .owners
                .unwrap_or_default()
                .into_iter()
                .filter(|o| !o.trim().is_empty())
                .collect(),
            sponsors,
            disabled: false,
            deleted_at: None,
            default_roles,
            default_delegations,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_blueprint(&b).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                AdminError::Conflict(format!("a blueprint named {:?} already exists", b.name))
            }
            other => other.into(),
        })?;
        let view = BlueprintView::of(&b);
        self.record_change(
            actor,
            "blueprint.create",
            None,
            None,
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(view)
    }

    pub async fn load_blueprint(&self, id: &str) -> Result<Blueprint, AdminError> {
        let id = super::parse_id("blueprint", id)?;
        self.store
            .get_blueprint(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no blueprint has id {id}")))
    }

    pub async fn get_blueprint(&self, id: &str) -> Result<BlueprintView, AdminError> {
        Ok(BlueprintView::of(&self.load_blueprint(id).await?))
    }

    /// Every blueprint, live and soft-deleted (a deleted one keeps its name and defaults until
    /// it is purged).
    pub async fn all_blueprints(&self) -> Result<Vec<crate::domain::Blueprint>, AdminError> {
        let mut all = Vec::new();
        for deleted in [false, true] {
            let mut page = PageRequest::first(crate::domain::page::MAX_LIMIT);
            loop {
                let batch = self.store.list_blueprints(&page, deleted).await?;
                let done = batch.len() < page.limit as usize;
                page.after = batch.last().map(|b| b.id.to_string());
                all.extend(batch);
                if done {
                    break;
                }
            }
        }
        Ok(all)
    }

    /// Live blueprints, or (`deleted`) the soft-deleted ones, as agents are listed.
    pub async fn list_blueprints(
        &self,
        page: PageRequest,
        deleted: bool,
    ) -> Result<Page<BlueprintView>, AdminError> {
        let items = self.store.list_blueprints(&page, deleted).await?;
        let next_cursor = (items.len() == page.limit as usize)
            .then(|| items.last().map(|b| b.id.to_string()))
            .flatten();
        Ok(Page {
            items: items.iter().map(BlueprintView::of).collect(),
            next_cursor,
        })
    }

    pub async fn patch_blueprint(
        &self,
        actor: &Actor,
        id: &str,
        patch: PatchBlueprint,
    ) -> Result<BlueprintView, AdminError> {
        let mut b = self.load_blueprint(id).await?;
        if b.deleted_at.is_some() {
            return Err(AdminError::Conflict(
                "the blueprint is deleted: restore it first".into(),
            ));
        }
        let before = BlueprintView::of(&b);
        if let Some(n) = patch.name {
            check_name("name", &n)?;
            b.name = n;
        }
        if let Some(d) = patch.description {
            check_description(&d)?;
            b.description = d;
        }
        if let Some(o) = patch.owners {
            check_principals("owners", &o)?;
            b.owners = o.into_iter().filter(|o| !o.trim().is_empty()).collect();
        }
        if let Some(s) = patch.sponsors {
            let s: Vec<String> = s.into_iter().filter(|s| !s.trim().is_empty()).collect();
            check_sponsors(&s)?;
            check_principals("sponsors", &s)?;
            b.sponsors = s;
        }
        if patch.default_roles.is_some() || patch.default_delegations.is_some() {
            let (r, s) = self
                .check_defaults(
                    &patch.default_roles.unwrap_or_default(),
                    &patch.default_delegations.unwrap_or_default(),
                )
                .await?;
            b.default_roles = r;
            b.default_delegations = s;
        }
        if let Some(d) = patch.disabled {
            b.disabled = d;
        }
        b.updated_at = self.now();
        self.store.update_blueprint(&b).await.map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => {
                AdminError::Conflict(format!("a blueprint named {:?} already exists", b.name))
            }
            other => other.into(),
        })?;
        self.directory.invalidate_all();
        let view = BlueprintView::of(&b);
        self.record_change(
            actor,
            "blueprint.update",
            None,
            Some(serde_json::to_value(&before).unwrap_or_default()),
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(view)
    }

    /// Soft-deletes the blueprint and every agent made from it.
    pub async fn delete_blueprint(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        let mut b = self.load_blueprint(id).await?;
        let before = serde_json::to_value(BlueprintView::of(&b)).unwrap_or_default();
        let now = self.now();
        if b.deleted_at.is_none() {
            // Stored to the second: the blueprint's deletion is stamped after every agent
            // deleted on its own, so that its restore (which takes back the agents deleted at
            // or after that instant) cannot take those back too.
            let after_own_deletions = self
                .agents_of_blueprint(b.id, Some(crate::domain::AgentStatus::Deleted))
                .await?
                .iter()
                .filter_map(|a| a.deleted_at)
                .map(|t| t + time::Duration::seconds(1))
                .max();
            b.deleted_at = Some(after_own_deletions.map_or(now, |t| t.max(now)));
            b.updated_at = now;
            self.store.update_blueprint(&b).await?;
        }
        // Listed after the blueprint is marked: an agent made from it meanwhile goes too.
        for agent in self.agents_of_blueprint(b.id, None).await? {
            if agent.deleted_at.is_none() {
                self.delete_agent_at(actor, &agent.id.to_string(), b.deleted_at)
                    .await?;
            }
        }
        self.directory.invalidate_all();
        self.record_change(
            actor,
            "blueprint.delete",
            None,
            Some(before),
            Some(serde_json::to_value(BlueprintView::of(&b)).unwrap_or_default()),
        )
        .await
    }

    /// Restores the blueprint and the agents its deletion took with it.
    pub async fn restore_blueprint(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<BlueprintView, AdminError> {
        let mut b = self.load_blueprint(id).await?;
        let before = serde_json::to_value(BlueprintView::of(&b)).unwrap_or_default();
        let Some(deleted_at) = b.deleted_at else {
            return Err(AdminError::Conflict("the blueprint is not deleted".into()));
        };
        b.deleted_at = None;
        b.updated_at = self.now();
        self.store.update_blueprint(&b).await?;
        for agent in self
            .agents_of_blueprint(b.id, Some(crate::domain::AgentStatus::Deleted))
            .await?
        {
            if agent.deleted_at.is_some_and(|t| t >= deleted_at) {
                self.restore_agent(actor, &agent.id.to_string()).await?;
            }
        }
        self.directory.invalidate_all();
        let view = BlueprintView::of(&b);
        self.record_change(
            actor,
            "blueprint.restore",
            None,
            Some(before),
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(view)
    }

    async fn agents_of_blueprint(
        &self,
        id: Uuid,
        status: Option<crate::domain::AgentStatus>,
    ) -> Result<Vec<crate::domain::Agent>, AdminError> {
        let filter = AgentFilter {
            blueprint_id: Some(id),
            status,
            ..Default::default()
        };
        let mut page = PageRequest::first(crate::domain::page::MAX_LIMIT);
        let mut all = Vec::new();
        loop {
            let batch = self.store.list_agents(&filter, self.now(), &page).await?;
            let done = batch.len() < page.limit as usize;
            page.after = batch.last().map(|a| a.id.to_string());
            all.extend(batch);
            if done {
                return Ok(all);
            }
        }
    }

    pub async fn blueprint_id_of(&self, id: &str) -> Result<Uuid, AdminError> {
        Ok(self.load_blueprint(id).await?.id)
    }
}
