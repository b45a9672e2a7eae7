-- agentauth schema, SQLite dialect. Times are Unix seconds unless named *_ms.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE agents (
    id                       TEXT PRIMARY KEY,
    name                     TEXT NOT NULL UNIQUE,
    description              TEXT NOT NULL,
    owners                   TEXT NOT NULL,
    sponsors                 TEXT NOT NULL,
    disabled                 BOOLEAN NOT NULL,
    deleted_at               BIGINT,
    expires_at               BIGINT NOT NULL,
    token_ttl_seconds        BIGINT,
    tags                     TEXT NOT NULL,
    blueprint_id             TEXT,
    last_active_at           BIGINT,
    tokens_revoked_before_ms BIGINT NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
CREATE INDEX agents_blueprint ON agents (blueprint_id);

CREATE TABLE blueprints (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    description         TEXT NOT NULL,
    owners              TEXT NOT NULL,
    sponsors            TEXT NOT NULL,
    disabled            BOOLEAN NOT NULL,
    deleted_at          BIGINT,
    default_roles       TEXT NOT NULL,
    default_delegations TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE credentials (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    secret_hash TEXT,
    hint        TEXT,
    jwk         TEXT,
    jwks_uri    TEXT,
    certificate TEXT,
    issuer      TEXT,
    subject     TEXT,
    audience    TEXT,
    expires_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX credentials_owner ON credentials (owner_id);

CREATE TABLE resources (
    id                       TEXT PRIMARY KEY,
    identifier               TEXT NOT NULL UNIQUE,
    name                     TEXT NOT NULL,
    scopes                   TEXT NOT NULL,
    roles                    TEXT NOT NULL,
    user_assignment_required BOOLEAN NOT NULL,
    token_profile            TEXT NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);

CREATE TABLE role_assignments (
    agent_id    TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    roles       TEXT NOT NULL,
    PRIMARY KEY (agent_id, resource_id)
);

CREATE TABLE delegation_grants (
    agent_id    TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    PRIMARY KEY (agent_id, resource_id)
);

CREATE TABLE user_assignments (
    principal   TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    PRIMARY KEY (principal, resource_id)
);

CREATE TABLE trusted_issuers (
    id            TEXT PRIMARY KEY,
    issuer        TEXT NOT NULL UNIQUE,
    jwks_uri      TEXT,
    jwks          TEXT,
    subject_claim TEXT NOT NULL,
    audiences     TEXT NOT NULL,
    uses          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Client-assertion `jti`s already used (RFC 7523 §3 replay protection), shared by replicas.
CREATE TABLE used_assertions (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL,
    state         TEXT NOT NULL,
    private_key   TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    activate_at   BIGINT NOT NULL,
    retired_at    BIGINT
);

CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    id        TEXT NOT NULL,
    at_ms     BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    agent_id  TEXT,
    reason    TEXT,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_events_agent ON audit_events (agent_id, seq);
CREATE INDEX audit_events_at ON audit_events (at_ms);

-- The chain's head, one row: writers lock it so that replicas append in turn.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY,
    last_seq  BIGINT NOT NULL,
    last_hash TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
