//! `/admin/v1` (SPEC §8): thin handlers that parse, authorize and call `admin`.

use super::AppState;
use super::admin_auth::AdminCaller;
use super::extract::{ApiJson, ApiQuery};
use super::problem::Problem;
use crate::admin::agents::{CreateAgent, PatchAgent, PutDelegation, PutRoles, status_filter};
use crate::admin::blueprints::{CreateBlueprint, PatchBlueprint};
use crate::admin::credentials::{CreateCredential, CreatedCredential};
use crate::admin::issuers::CreateIssuer;
use crate::admin::resources::{CreateResource, PatchResource, PutUserAssignment};
use crate::admin::{AdminError, parse_time};
use crate::crypto::digest::{b64url, b64url_decode};
use crate::domain::page::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::domain::{Page, PageRequest};
use crate::store::{AgentFilter, AuditFilter};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

type ApiResult = Result<Response, Problem>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(super::openapi::document))
        .route("/agents", post(create_agent).get(list_agents))
        .route(
            "/agents/{id}",
            get(get_agent).patch(patch_agent).delete(delete_agent),
        )
        .route("/agents/{id}/disable", post(disable_agent))
        .route("/agents/{id}/enable", post(enable_agent))
        .route("/agents/{id}/restore", post(restore_agent))
        .route("/agents/{id}/revoke-tokens", post(revoke_agent_tokens))
        .route(
            "/agents/{id}/credentials",
            post(add_agent_credential).get(list_agent_credentials),
        )
        .route(
            "/agents/{id}/credentials/{cid}",
            axum::routing::delete(remove_agent_credential),
        )
        .route("/agents/{id}/roles", put(put_roles).get(list_roles))
        .route(
            "/agents/{id}/delegations",
            put(put_delegation).get(list_delegations),
        )
        .route("/resources", post(create_resource).get(list_resources))
        .route(
            "/resources/{id}",
            get(get_resource)
                .patch(patch_resource)
                .delete(delete_resource),
        )
        .route(
            "/user-assignments",
            put(put_user_assignment).get(list_user_assignments),
        )
        .route("/blueprints", post(create_blueprint).get(list_blueprints))
        .route(
            "/blueprints/{id}",
            get(get_blueprint)
                .patch(patch_blueprint)
                .delete(delete_blueprint),
        )
        .route("/blueprints/{id}/restore", post(restore_blueprint))
        .route(
            "/blueprints/{id}/credentials",
            post(add_blueprint_credential).get(list_blueprint_credentials),
        )
        .route(
            "/blueprints/{id}/credentials/{cid}",
            axum::routing::delete(remove_blueprint_credential),
        )
        .route("/trusted-issuers", post(create_issuer).get(list_issuers))
        .route(
            "/trusted-issuers/{id}",
            get(get_issuer).delete(delete_issuer),
        )
        .route("/keys", get(list_keys))
        .route("/keys/rotate", post(rotate_keys))
        .route("/audit", get(list_audit))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn unknown_route() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no such admin API route; see /admin/v1/openapi.json",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method; see /admin/v1/openapi.json",
    )
}

fn ok<T: Serialize>(value: T) -> ApiResult {
    Ok(Json(value).into_response())
}

fn created<T: Serialize>(value: T) -> ApiResult {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// 201 with `Location` naming the new resource (RFC 9110 §15.3.2), relative to the API's root.
fn created_at<T: Serialize>(location: String, value: T) -> ApiResult {
    let mut res = created(value)?;
    if let Ok(location) = axum::http::HeaderValue::from_str(&location) {
        res.headers_mut()
            .insert(axum::http::header::LOCATION, location);
    }
    Ok(res)
}

fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `?limit=&cursor=`: the cursor is opaque to clients.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageQuery {
    fn page(&self) -> Result<PageRequest, AdminError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(AdminError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match &self.cursor {
            Some(c) => Some(
                b64url_decode(c)
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        AdminError::invalid("cursor", "cursor is not one this server gave")
                    })?,
            ),
            None => None,
        };
        Ok(PageRequest { limit, after })
    }
}

/// A page of a short list the service returns whole (credentials, grants, issuers, keys),
/// in the order of each item's unique `key`; the cursor is the last key seen, so items added
/// or removed meanwhile neither skip nor repeat the others.
fn page_of<T: Serialize>(
    mut items: Vec<T>,
    q: &PageQuery,
    key: impl Fn(&T) -> String,
) -> ApiResult {
    let page = q.page()?;
    items.sort_by_key(|item| key(item));
    let mut rest = items
        .into_iter()
        .filter(|item| page.after.as_ref().is_none_or(|after| key(item) > *after))
        .peekable();
    let items: Vec<T> = rest.by_ref().take(page.limit as usize).collect();
    let next_cursor = rest
        .peek()
        .is_some()
        .then(|| items.last().map(&key))
        .flatten();
    paged(Page { items, next_cursor })
}

fn paged<T: Serialize>(page: Page<T>) -> ApiResult {
    ok(Page {
        items: page.items,
        next_cursor: page.next_cursor.map(|c| b64url(c.as_bytes())),
    })
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct AgentQuery {
    pub status: Option<String>,
    pub owner: Option<String>,
    pub sponsor: Option<String>,
    pub expiring_before: Option<String>,
    pub blueprint_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(post, path = "/agents", request_body = CreateAgent, responses((status = 201, body = crate::admin::views::AgentView, headers(("location" = String, description = "where the new object lives"))), (status = 400), (status = 409)))]
pub async fn create_agent(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    ApiJson(body): ApiJson<CreateAgent>,
) -> ApiResult {
    let agent = s.admin.create_agent(&a, body).await?;
    created_at(format!("/admin/v1/agents/{}", agent.id), agent)
}

#[utoipa::path(get, path = "/agents", params(AgentQuery), responses((status = 200, description = "a page of agents")))]
pub async fn list_agents(
    State(s): State<AppState>,
    _: AdminCaller,
    ApiQuery(q): ApiQuery<AgentQuery>,
) -> ApiResult {
    let filter = AgentFilter {
        status: q.status.as_deref().map(status_filter).transpose()?,
        owner: q.owner.clone(),
        sponsor: q.sponsor.clone(),
        expiring_before: q
            .expiring_before
            .as_deref()
            .map(|t| parse_time("expiring_before", t))
            .transpose()?,
        blueprint_id: q
            .blueprint_id
            .as_deref()
            .map(|b| {
                uuid::Uuid::parse_str(b)
                    .map_err(|_| AdminError::invalid("blueprint_id", "blueprint_id must be a UUID"))
            })
            .transpose()?,
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    paged(s.admin.list_agents(filter, page).await?)
}

#[utoipa::path(get, path = "/agents/{id}", responses((status = 200, body = crate::admin::views::AgentView), (status = 404)))]
pub async fn get_agent(
    State(s): State<AppState>,
    _: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.admin.get_agent(&id).await?)
}

#[utoipa::path(patch, path = "/agents/{id}", request_body = PatchAgent, responses((status = 200, body = crate::admin::views::AgentView)))]
pub async fn patch_agent(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchAgent>,
) -> ApiResult {
    ok(s.admin.patch_agent(&a, &id, body).await?)
}

#[utoipa::path(delete, path = "/agents/{id}", responses((status = 204, description = "soft-deleted; restorable for 30 days")))]
pub async fn delete_agent(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    s.admin.delete_agent(&a, &id).await?;
    no_content()
}

#[utoipa::path(post, path = "/agents/{id}/disable", responses((status = 200, body = crate::admin::views::AgentView)))]
pub async fn disable_agent(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.admin.disable_agent(&a, &id).await?)
}

#[utoipa::path(post, path = "/agents/{id}/enable", responses((status = 200, body = crate::admin::views::AgentView)))]
pub async fn enable_agent(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.admin.enable_agent(&a, &id).await?)
}

#[utoipa::path(post, path = "/agents/{id}/restore", responses((status = 200, body = crate::admin::views::AgentView)))]
pub async fn restore_agent(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.admin.restore_agent(&a, &id).await?)
}

#[utoipa::path(post, path = "/agents/{id}/revoke-tokens", responses((status = 204)))]
pub async fn revoke_agent_tokens(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    s.admin.revoke_agent_tokens(&a, &id).await?;
    no_content()
}

/// `collection` is the owner's credentials path, `/admin/v1/agents/{id}/credentials`.
fn credential_answer(collection: String, c: CreatedCredential) -> ApiResult {
    match c {
        CreatedCredential::Secret(v) => {
            let mut res = created_at(format!("{collection}/{}", v.id), v)?;
            super::oauth_routes::no_store(res.headers_mut());
            Ok(res)
        }
        CreatedCredential::Other(v) => created_at(format!("{collection}/{}", v.id), v),
    }
}

#[utoipa::path(post, path = "/agents/{id}/credentials", request_body = CreateCredential, responses((status = 201, body = crate::admin::views::NewSecretView, headers(("location" = String, description = "where the new object lives")))))]
pub async fn add_agent_credential(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateCredential>,
) -> ApiResult {
    let owner = s.admin.agent_id_of(&id).await?;
    credential_answer(
        format!("/admin/v1/agents/{owner}/credentials"),
        s.admin
            .add_credential(&a, owner, Some(owner), body, None)
            .await?,
    )
}

#[utoipa::path(get, path = "/agents/{id}/credentials", params(PageQuery), responses((status = 200, description = "the agent's credentials, never a secret value")))]
pub async fn list_agent_credentials(
    State(s): State<AppState>,
    _: AdminCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult {
    let owner = s.admin.agent_id_of(&id).await?;
    page_of(s.admin.list_credentials(owner).await?, &q, |c| c.id.clone())
}

#[utoipa::path(delete, path = "/agents/{id}/credentials/{cid}", responses((status = 204)))]
pub async fn remove_agent_credential(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path((id, cid)): Path<(String, String)>,
) -> ApiResult {
    let owner = s.admin.agent_id_of(&id).await?;
    s.admin
        .remove_credential(&a, owner, Some(owner), &cid)
        .await?;
    no_content()
}

#[utoipa::path(put, path = "/agents/{id}/roles", request_body = PutRoles, responses((status = 200, body = crate::admin::views::RolesView)))]
pub async fn put_roles(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PutRoles>,
) -> ApiResult {
    ok(s.admin.put_roles(&a, &id, body).await?)
}

#[utoipa::path(get, path = "/agents/{id}/roles", params(PageQuery), responses((status = 200, description = "role assignments by resource")))]
pub async fn list_roles(
    State(s): State<AppState>,
    _: AdminCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult {
    page_of(s.admin.list_roles(&id).await?, &q, |r| r.resource.clone())
}

#[utoipa::path(put, path = "/agents/{id}/delegations", request_body = PutDelegation, responses((status = 200, body = crate::admin::views::DelegationView)))]
pub async fn put_delegation(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PutDelegation>,
) -> ApiResult {
    ok(s.admin.put_delegation(&a, &id, body).await?)
}

#[utoipa::path(get, path = "/agents/{id}/delegations", params(PageQuery), responses((status = 200, description = "delegation grants by resource")))]
pub async fn list_delegations(
    State(s): State<AppState>,
    _: AdminCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult {
    page_of(s.admin.list_delegations(&id).await?, &q, |d| {
        d.resource.clone()
    })
}

#[utoipa::path(post, path = "/resources", request_body = CreateResource, responses((status = 201, body = crate::admin::views::ResourceView, headers(("location" = String, description = "where the new object lives"))), (status = 409)))]
pub async fn create_resource(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    ApiJson(body): ApiJson<CreateResource>,
) -> ApiResult {
    let resource = s.admin.create_resource(&a, body).await?;
    created_at(format!("/admin/v1/resources/{}", resource.id), resource)
}

#[utoipa::path(get, path = "/resources", params(PageQuery), responses((status = 200, description = "a page of resources")))]
pub async fn list_resources(
    State(s): State<AppState>,
    _: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult {
    paged(s.admin.list_resources(q.page()?).await?)
}

#[utoipa::path(get, path = "/resources/{id}", responses((status = 200, body = crate::admin::views::ResourceView)))]
pub async fn get_resource(
    State(s): State<AppState>,
    _: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.admin.get_resource(&id).await?)
}

#[utoipa::path(patch, path = "/resources/{id}", request_body = PatchResource, responses((status = 200, body = crate::admin::views::ResourceView)))]
pub async fn patch_resource(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchResource>,
) -> ApiResult {
    ok(s.admin.patch_resource(&a, &id, body).await?)
}

#[utoipa::path(delete, path = "/resources/{id}", responses((status = 204)))]
pub async fn delete_resource(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    s.admin.delete_resource(&a, &id).await?;
    no_content()
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct UserAssignmentQuery {
    pub principal: Option<String>,
    pub resource: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(put, path = "/user-assignments", request_body = PutUserAssignment, responses((status = 200, body = crate::admin::views::UserAssignmentView)))]
pub async fn put_user_assignment(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    ApiJson(body): ApiJson<PutUserAssignment>,
) -> ApiResult {
    ok(s.admin.put_user_assignment(&a, body).await?)
}

#[utoipa::path(get, path = "/user-assignments", params(UserAssignmentQuery), responses((status = 200, description = "user assignments")))]
pub async fn list_user_assignments(
    State(s): State<AppState>,
    _: AdminCaller,
    ApiQuery(q): ApiQuery<UserAssignmentQuery>,
) -> ApiResult {
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    page_of(
        s.admin
            .list_user_assignments(q.principal.as_deref(), q.resource.as_deref())
            .await?,
        &page,
        // A principal holds one assignment per resource; the newline cannot be in either.
        |u| format!("{}\n{}", u.principal, u.resource),
    )
}

#[utoipa::path(post, path = "/blueprints", request_body = CreateBlueprint, responses((status = 201, body = crate::admin::views::BlueprintView, headers(("location" = String, description = "where the new object lives")))))]
pub async fn create_blueprint(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    ApiJson(body): ApiJson<CreateBlueprint>,
) -> ApiResult {
    let blueprint = s.admin.create_blueprint(&a, body).await?;
    created_at(format!("/admin/v1/blueprints/{}", blueprint.id), blueprint)
}

/// `?status=deleted` lists the soft-deleted blueprints; without it, the others.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct BlueprintQuery {
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/blueprints", params(BlueprintQuery), responses((status = 200, description = "a page of blueprints")))]
pub async fn list_blueprints(
    State(s): State<AppState>,
    _: AdminCaller,
    ApiQuery(q): ApiQuery<BlueprintQuery>,
) -> ApiResult {
    let deleted = match q.status.as_deref() {
        None => false,
        Some("deleted") => true,
        Some(_) => {
            return Err(
                AdminError::invalid("status", "status may only be deleted for blueprints").into(),
            );
        }
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    paged(s.admin.list_blueprints(page.page()?, deleted).await?)
}

#[utoipa::path(get, path = "/blueprints/{id}", responses((status = 200, body = crate::admin::views::BlueprintView)))]
pub async fn get_blueprint(
    State(s): State<AppState>,
    _: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.admin.get_blueprint(&id).await?)
}

#[utoipa::path(patch, path = "/blueprints/{id}", request_body = PatchBlueprint, responses((status = 200, body = crate::admin::views::BlueprintView)))]
pub async fn patch_blueprint(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PatchBlueprint>,
) -> ApiResult {
    ok(s.admin.patch_blueprint(&a, &id, body).await?)
}

#[utoipa::path(delete, path = "/blueprints/{id}", responses((status = 204, description = "soft-deletes the blueprint and its agents")))]
pub async fn delete_blueprint(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    s.admin.delete_blueprint(&a, &id).await?;
    no_content()
}

#[utoipa::path(post, path = "/blueprints/{id}/restore", responses((status = 200, body = crate::admin::views::BlueprintView)))]
pub async fn restore_blueprint(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.admin.restore_blueprint(&a, &id).await?)
}

#[utoipa::path(post, path = "/blueprints/{id}/credentials", request_body = CreateCredential, responses((status = 201, body = crate::admin::views::NewSecretView, headers(("location" = String, description = "where the new object lives")))))]
pub async fn add_blueprint_credential(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateCredential>,
) -> ApiResult {
    let owner = s.admin.blueprint_id_of(&id).await?;
    credential_answer(
        format!("/admin/v1/blueprints/{owner}/credentials"),
        s.admin.add_credential(&a, owner, None, body, None).await?,
    )
}

#[utoipa::path(get, path = "/blueprints/{id}/credentials", params(PageQuery), responses((status = 200, description = "the blueprint's credentials")))]
pub async fn list_blueprint_credentials(
    State(s): State<AppState>,
    _: AdminCaller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult {
    let owner = s.admin.blueprint_id_of(&id).await?;
    page_of(s.admin.list_credentials(owner).await?, &q, |c| c.id.clone())
}

#[utoipa::path(delete, path = "/blueprints/{id}/credentials/{cid}", responses((status = 204)))]
pub async fn remove_blueprint_credential(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path((id, cid)): Path<(String, String)>,
) -> ApiResult {
    let owner = s.admin.blueprint_id_of(&id).await?;
    s.admin.remove_credential(&a, owner, None, &cid).await?;
    no_content()
}

#[utoipa::path(post, path = "/trusted-issuers", request_body = CreateIssuer, responses((status = 201, body = crate::admin::views::IssuerView, headers(("location" = String, description = "where the new object lives")))))]
pub async fn create_issuer(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    ApiJson(body): ApiJson<CreateIssuer>,
) -> ApiResult {
    let issuer = s.admin.create_issuer(&a, body).await?;
    created_at(format!("/admin/v1/trusted-issuers/{}", issuer.id), issuer)
}

#[utoipa::path(get, path = "/trusted-issuers", params(PageQuery), responses((status = 200, description = "trusted issuers")))]
pub async fn list_issuers(
    State(s): State<AppState>,
    _: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult {
    page_of(s.admin.list_issuers().await?, &q, |i| i.id.clone())
}

#[utoipa::path(get, path = "/trusted-issuers/{id}", responses((status = 200, body = crate::admin::views::IssuerView)))]
pub async fn get_issuer(
    State(s): State<AppState>,
    _: AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    ok(s.admin.get_issuer(&id).await?)
}

#[utoipa::path(delete, path = "/trusted-issuers/{id}", responses((status = 204)))]
pub async fn delete_issuer(
    State(s): State<AppState>,
    AdminCaller(a): AdminCaller,
    Path(id): Path<String>,
) -> ApiResult {
    s.admin.delete_issuer(&a, &id).await?;
    no_content()
}

#[utoipa::path(get, path = "/keys", params(PageQuery), responses((status = 200, description = "signing keys: public part and state")))]
pub async fn list_keys(
    State(s): State<AppState>,
    _: AdminCaller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult {
    page_of(s.admin.list_keys(), &q, |k| k.kid.clone())
}

#[utoipa::path(post, path = "/keys/rotate", responses((status = 201, body = crate::admin::views::KeyView)))]
pub async fn rotate_keys(State(s): State<AppState>, AdminCaller(a): AdminCaller) -> ApiResult {
    created(s.admin.rotate_keys(&a).await?)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct AuditQuery {
    pub agent_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/audit", params(AuditQuery), responses((status = 200, description = "a page of audit events")))]
pub async fn list_audit(
    State(s): State<AppState>,
    _: AdminCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult {
    if let Some(o) = &q.outcome
        && o != "success"
        && o != "failure"
    {
        return Err(AdminError::invalid("outcome", "outcome must be success or failure").into());
    }
    let filter = AuditFilter {
        agent_id: q.agent_id.clone(),
        action: q.action.clone(),
        outcome: q.outcome.clone(),
        since: q
            .since
            .as_deref()
            .map(|t| parse_time("since", t))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?,
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .page()?;
    paged(s.admin.list_audit(filter, page).await?)
}
