//! The admin API's OpenAPI document, generated from the handlers' annotations.

use super::admin_routes as r;
use axum::Json;
use axum::response::IntoResponse;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "agentauth admin API", description = "Manage agents, blueprints, resources, trusted issuers, keys and the audit trail. Errors are RFC 9457 problems."),
    servers((url = "/admin/v1")),
    paths(
        r::create_agent, r::list_agents, r::get_agent, r::patch_agent, r::delete_agent,
        r::disable_agent, r::enable_agent, r::restore_agent, r::revoke_agent_tokens,
        r::add_agent_credential, r::list_agent_credentials, r::remove_agent_credential,
        r::put_roles, r::list_roles, r::put_delegation, r::list_delegations,
        r::create_resource, r::list_resources, r::get_resource, r::patch_resource, r::delete_resource,
        r::put_user_assignment, r::list_user_assignments,
        r::create_blueprint, r::list_blueprints, r::get_blueprint, r::patch_blueprint, r::delete_blueprint,
        r::restore_blueprint, r::add_blueprint_credential, r::list_blueprint_credentials, r::remove_blueprint_credential,
        r::create_issuer, r::list_issuers, r::get_issuer, r::delete_issuer,
        r::list_keys, r::rotate_keys, r::list_audit,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct AdminApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub async fn document() -> impl IntoResponse {
    Json(AdminApi::openapi())
}
