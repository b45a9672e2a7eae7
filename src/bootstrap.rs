//! First start: the tenant id, the admin resource `<base>/admin` with its roles, and the
//! bootstrap admin agent whose credentials go to `<data dir>/admin-credentials.json` (0600).
//! Later starts reuse all of it.

use crate::admin::agents::CreateAgent;
use crate::admin::credentials::{CreateCredential, CreatedCredential};
use crate::admin::resources::CreateResource;
use crate::admin::{Actor, AdminError, AdminService};
use crate::domain::RoleAssignment;
use crate::oauth::introspect::{ROLE_ADMIN, ROLE_INTROSPECT, ROLE_READER};
use crate::store::SharedStore;
use serde::{Deserialize, Serialize};
use std::path::Path;
use uuid::Uuid;

pub const ADMIN_AGENT_NAME: &str = "agentauth-admin";
pub const CREDENTIALS_FILE: &str = "admin-credentials.json";

/// The bootstrap admin's credentials, as written to `admin-credentials.json` (SPEC §8).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub token_endpoint: String,
    pub scope: String,
    pub tenant_id: String,
}

/// The system acting on its own behalf.
pub fn system_actor() -> Actor {
    Actor {
        agent_id: Uuid::nil(),
    }
}

/// The tenant id: configured, or made once and kept in the store.
pub async fn tenant_id(
    store: &SharedStore,
    configured: Option<&str>,
) -> Result<String, AdminError> {
    let fresh = configured
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let stored = store.init_setting("tenant_id", &fresh).await?;
    Ok(configured.map(str::to_owned).unwrap_or(stored))
}

/// Makes sure the admin resource and the bootstrap admin exist, and that the data dir holds
/// usable admin credentials.
pub async fn ensure_admin(
    admin: &AdminService,
    data_dir: &Path,
    base_url: &str,
    tenant_id: &str,
) -> Result<AdminCredentials, AdminError> {
    let actor = system_actor();
    let identifier = format!("{base_url}/admin");
    let resource = match admin.store.get_resource_by_identifier(&identifier).await? {
        Some(r) => r,
        None => {
            let created = admin
                .create_resource(
                    &actor,
                    CreateResource {
                        identifier: identifier.clone(),
                        name: Some("agentauth admin API".into()),
                        scopes: vec![],
                        roles: vec![
                            ROLE_ADMIN.into(),
                            ROLE_READER.into(),
                            ROLE_INTROSPECT.into(),
                        ],
                        user_assignment_required: false,
                        token_profile: None,
                    },
                )
                .await;
            match created {
                Ok(_) | Err(AdminError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            admin
                .store
                .get_resource_by_identifier(&identifier)
                .await?
                .ok_or_else(|| AdminError::Internal("the admin resource vanished".into()))?
        }
    };
    let agent = match admin.store.get_agent_by_name(ADMIN_AGENT_NAME).await? {
        Some(a) => a,
        None => {
            let created = admin
                .create_agent(
                    &actor,
                    CreateAgent {
                        name: ADMIN_AGENT_NAME.into(),
                        description: Some("Bootstrap administrator made at first start".into()),
                        owners: None,
                        sponsors: Some(vec!["agentauth-operators".into()]),
                        expires_at: Some(crate::admin::format_time(
                            admin.clock.now() + time::Duration::days(365 * 100),
                        )),
                        token_ttl_seconds: None,
                        tags: None,
                        blueprint_id: None,
                        inherit_defaults: false,
                        id: None,
                    },
                )
                .await;
            match created {
                Ok(_) | Err(AdminError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            admin
                .store
                .get_agent_by_name(ADMIN_AGENT_NAME)
                .await?
                .ok_or_else(|| AdminError::Internal("the admin agent vanished".into()))?
        }
    };
    let roles = admin.store.roles_on(agent.id, resource.id).await?;
    if !roles.iter().any(|r| r == ROLE_ADMIN) {
        admin
            .store
            .set_roles(&RoleAssignment {
                agent_id: agent.id,
                resource_id: resource.id,
                roles: vec![ROLE_ADMIN.into()],
            })
            .await?;
    }
    let path = data_dir.join(CREDENTIALS_FILE);
    let token_endpoint = format!("{base_url}/oauth2/token");
    let scope = format!("{identifier}/.default");
    if let Ok(text) = tokio::fs::read_to_string(&path).await
        && let Ok(mut creds) = serde_json::from_str::<AdminCredentials>(&text)
        && creds.client_id == agent.id.to_string()
    {
        if creds.token_endpoint != token_endpoint
            || creds.scope != scope
            || creds.tenant_id != tenant_id
        {
            creds.token_endpoint = token_endpoint;
            creds.scope = scope;
            creds.tenant_id = tenant_id.to_owned();
            write_credentials(&path, &creds).await?;
        }
        return Ok(creds);
    }
    // No usable file here (first start, or a new data dir beside a shared database): issue a
    // new secret for the admin agent and write it down.
    let created = admin
        .add_credential(
            &actor,
            agent.id,
            Some(agent.id),
            CreateCredential::ClientSecret { expires_at: None },
            None,
        )
        .await?;
    let CreatedCredential::Secret(secret) = created else {
        return Err(AdminError::Internal("expected a client secret".into()));
    };
    let creds = AdminCredentials {
        client_id: agent.id.to_string(),
        client_secret: secret.secret,
        token_endpoint,
        scope,
        tenant_id: tenant_id.to_owned(),
    };
    write_credentials(&path, &creds).await?;
    tracing::info!(path = %path.display(), "wrote the bootstrap admin credentials");
    Ok(creds)
}

async fn write_credentials(path: &Path, creds: &AdminCredentials) -> Result<(), AdminError> {
    let text =
        serde_json::to_string_pretty(creds).map_err(|e| AdminError::Internal(e.to_string()))?;
    crate::store::key_store::write_private(path, &text)
        .await
        .map_err(|e| AdminError::Internal(e.to_string()))
}
