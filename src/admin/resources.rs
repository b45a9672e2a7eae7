//! Resources and user assignments.

use super::views::{BlueprintView, ResourceView, UserAssignmentView};
use super::{Actor, AdminError, AdminService, check_name, check_permission_names, dedup};
use crate::domain::{
    DelegationGrant, Page, PageRequest, Resource, RoleAssignment, TokenProfile, UserAssignment,
};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResource {
    pub identifier: String,
    pub name: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub user_assignment_required: bool,
    #[serde(default)]
    pub token_profile: Option<TokenProfile>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchResource {
    pub name: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub user_assignment_required: Option<bool>,
    pub token_profile: Option<TokenProfile>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutUserAssignment {
    pub principal: String,
    pub resource: String,
    pub scopes: Vec<String>,
}

fn check_identifier(identifier: &str) -> Result<(), AdminError> {
    let ok = !identifier.is_empty()
        && identifier.len() <= 400
        && !identifier.ends_with('/')
        && identifier.contains(':')
        && identifier
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if !ok {
        return Err(AdminError::invalid(
            "identifier",
            "identifier must be an absolute URI such as api://hotel-api or https://hotel.example, without a trailing slash",
        ));
    }
    Ok(())
}

impl AdminService {
    pub async fn create_resource(
        &self,
        actor: &Actor,
        req: CreateResource,
    ) -> Result<ResourceView, AdminError> {
        let now = self.now();
        check_identifier(&req.identifier)?;
        let name = req.name.unwrap_or_else(|| req.identifier.clone());
        check_name("name", &name)?;
        let scopes = dedup(req.scopes);
        let roles = dedup(req.roles);
        check_permission_names("scopes", &scopes)?;
        check_permission_names("roles", &roles)?;
        let resource = Resource {
            id: Uuid::now_v7(),
            identifier: req.identifier,
            name,
            scopes,
            roles,
            user_assignment_required: req.user_assignment_required,
            token_profile: req.token_profile.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_resource(&resource)
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(_) => AdminError::Conflict(format!(
                    "a resource with identifier {} already exists",
                    resource.identifier
                )),
                other => other.into(),
            })?;
        self.directory.invalidate_resources();
        let view = ResourceView::of(&resource);
        self.record_change(
            actor,
            "resource.create",
            None,
            None,
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(view)
    }

    async fn load_resource(&self, id: &str) -> Result<Resource, AdminError> {
        let id = super::parse_id("resource", id)?;
        self.store
            .get_resource(id)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("no resource has id {id}")))
    }

    pub async fn get_resource(&self, id: &str) -> Result<ResourceView, AdminError> {
        Ok(ResourceView::of(&self.load_resource(id).await?))
    }

    pub async fn list_resources(
        &self,
        page: PageRequest,
    ) -> Result<Page<ResourceView>, AdminError> {
        let items = self.store.list_resources(&page).await?;
        let next_cursor = (items.len() == page.limit as usize)
            .then(|| items.last().map(|r| r.id.to_string()))
            .flatten();
        Ok(Page {
            items: items.iter().map(ResourceView::of).collect(),
            next_cursor,
        })
    }

    pub async fn patch_resource(
        &self,
        actor: &Actor,
        id: &str,
        patch: PatchResource,
    ) -> Result<ResourceView, AdminError> {
        let mut r = self.load_resource(id).await?;
        let before = ResourceView::of(&r);
        let (roles_before, scopes_before) = (r.roles.clone(), r.scopes.clone());
        if let Some(n) = patch.name {
            check_name("name", &n)?;
            r.name = n;
        }
        if let Some(s) = patch.scopes {
            let s = dedup(s);
            check_permission_names("scopes", &s)?;
            r.scopes = s;
        }
        if let Some(roles) = patch.roles {
            let roles = dedup(roles);
            check_permission_names("roles", &roles)?;
            if r.identifier == self.admin_resource {
                return Err(AdminError::Conflict(
                    "the admin resource's roles are fixed".into(),
                ));
            }
            r.roles = roles;
        }
        if let Some(u) = patch.user_assignment_required {
            r.user_assignment_required = u;
        }
        if let Some(p) = patch.token_profile {
            r.token_profile = p;
        }
        r.updated_at = self.now();
        self.store.update_resource(&r).await?;
        self.directory.invalidate_resources();
        let view = ResourceView::of(&r);
        self.record_change(
            actor,
            "resource.update",
            None,
            Some(serde_json::to_value(&before).unwrap_or_default()),
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        // Only a narrowing has anything to withdraw; a rename or a new role has not.
        let narrowed =
            |before: &[String], after: &[String]| before.iter().any(|p| !after.contains(p));
        if narrowed(&roles_before, &r.roles) || narrowed(&scopes_before, &r.scopes) {
            self.withdraw_removed_permissions(actor, &r).await?;
        }
        Ok(view)
    }

    /// Takes the roles and scopes a resource no longer defines away from whoever held them, each
    /// change audited like the PUT that would make it: a name defined again later must not
    /// quietly grant it back.
    async fn withdraw_removed_permissions(
        &self,
        actor: &Actor,
        r: &Resource,
    ) -> Result<(), AdminError> {
        let kept = |held: &[String], defined: &[String]| -> Option<Vec<String>> {
            let kept: Vec<String> = held
                .iter()
                .filter(|p| defined.contains(p))
                .cloned()
                .collect();
            (kept.len() != held.len()).then_some(kept)
        };
        for a in self.store.role_assignments_on(r.id).await? {
            let Some(roles) = kept(&a.roles, &r.roles) else {
                continue;
            };
            let after = RoleAssignment { roles, ..a.clone() };
            self.store.set_roles(&after).await?;
            self.directory.invalidate_agent(a.agent_id);
            self.record_change(
                actor,
                "agent.roles.set",
                Some(a.agent_id),
                Some(json!({"resource": r.identifier, "roles": a.roles})),
                Some(json!({"resource": r.identifier, "roles": after.roles})),
            )
            .await?;
        }
        for g in self.store.delegations_on(r.id).await? {
            let Some(scopes) = kept(&g.scopes, &r.scopes) else {
                continue;
            };
            let after = DelegationGrant {
                scopes,
                ..g.clone()
            };
            self.store.set_delegation(&after).await?;
            self.directory.invalidate_agent(g.agent_id);
            self.record_change(
                actor,
                "agent.delegations.set",
                Some(g.agent_id),
                Some(json!({"resource": r.identifier, "scopes": g.scopes})),
                Some(json!({"resource": r.identifier, "scopes": after.scopes})),
            )
            .await?;
        }
        for b in self.all_blueprints().await? {
            self.withdraw_from_defaults(actor, &b, r).await?;
        }
        for u in self.store.user_assignments(None, Some(r.id)).await? {
            let Some(scopes) = kept(&u.scopes, &r.scopes) else {
                continue;
            };
            let after = UserAssignment {
                scopes,
                ..u.clone()
            };
            self.store.set_user_assignment(&after).await?;
            self.record_change(
                actor,
                "user_assignment.set",
                None,
                Some(json!({"principal": u.principal, "resource": r.identifier, "scopes": u.scopes})),
                Some(json!({"principal": u.principal, "resource": r.identifier, "scopes": after.scopes})),
            )
            .await?;
        }
        Ok(())
    }

    /// The same for what a blueprint's agents may inherit.
    async fn withdraw_from_defaults(
        &self,
        actor: &Actor,
        b: &crate::domain::Blueprint,
        r: &Resource,
    ) -> Result<(), AdminError> {
        let prune = |defaults: &BTreeMap<String, Vec<String>>, defined: &[String]| {
            let mut pruned = defaults.clone();
            if let Some(held) = pruned.get_mut(&r.identifier) {
                held.retain(|p| defined.contains(p));
                if held.is_empty() {
                    pruned.remove(&r.identifier);
                }
            }
            pruned
        };
        let roles = prune(&b.default_roles, &r.roles);
        let delegations = prune(&b.default_delegations, &r.scopes);
        if roles == b.default_roles && delegations == b.default_delegations {
            return Ok(());
        }
        let after = crate::domain::Blueprint {
            default_roles: roles,
            default_delegations: delegations,
            updated_at: self.now(),
            ..b.clone()
        };
        self.store.update_blueprint(&after).await?;
        self.record_change(
            actor,
            "blueprint.update",
            None,
            Some(serde_json::to_value(BlueprintView::of(b)).unwrap_or_default()),
            Some(serde_json::to_value(BlueprintView::of(&after)).unwrap_or_default()),
        )
        .await
    }

    pub async fn delete_resource(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        let r = self.load_resource(id).await?;
        if r.identifier == self.admin_resource {
            return Err(AdminError::Conflict(
                "the admin resource cannot be deleted".into(),
            ));
        }
        self.store.delete_resource(r.id).await?;
        self.directory.invalidate_resources();
        self.record_change(
            actor,
            "resource.delete",
            None,
            Some(serde_json::to_value(ResourceView::of(&r)).unwrap_or_default()),
            None,
        )
        .await
    }

    pub async fn put_user_assignment(
        &self,
        actor: &Actor,
        req: PutUserAssignment,
    ) -> Result<UserAssignmentView, AdminError> {
        if req.principal.trim().is_empty() {
            return Err(AdminError::invalid("principal", "principal is required"));
        }
        let resource = self
            .store
            .get_resource_by_identifier(&req.resource)
            .await?
            .ok_or_else(|| {
                AdminError::invalid(
                    "resource",
                    format!("no resource is registered as {}", req.resource),
                )
            })?;
        let scopes = dedup(req.scopes);
        check_permission_names("scopes", &scopes)?;
        if let Some(s) = scopes.iter().find(|s| !resource.scopes.contains(s)) {
            return Err(AdminError::invalid(
                "scopes",
                format!("{} defines no scope {s}", resource.identifier),
            ));
        }
        let before = self
            .store
            .user_assignments(Some(&req.principal), Some(resource.id))
            .await?;
        self.store
            .set_user_assignment(&UserAssignment {
                principal: req.principal.clone(),
                resource_id: resource.id,
                scopes: scopes.clone(),
            })
            .await?;
        let view = UserAssignmentView {
            principal: req.principal,
            resource: resource.identifier,
            scopes,
        };
        self.record_change(
            actor,
            "user_assignment.set",
            None,
            Some(serde_json::json!({"scopes": before.first().map(|b| b.scopes.clone()).unwrap_or_default()})),
            Some(serde_json::to_value(&view).unwrap_or_default()),
        )
        .await?;
        Ok(view)
    }

    pub async fn list_user_assignments(
        &self,
        principal: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Vec<UserAssignmentView>, AdminError> {
        let resource_id = match resource {
            Some(identifier) => match self.store.get_resource_by_identifier(identifier).await? {
                Some(r) => Some(r.id),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let mut out = Vec::new();
        for u in self.store.user_assignments(principal, resource_id).await? {
            if let Some(r) = self.store.get_resource(u.resource_id).await? {
                out.push(UserAssignmentView {
                    principal: u.principal,
                    resource: r.identifier,
                    scopes: u.scopes,
                });
            }
        }
        Ok(out)
    }
}
