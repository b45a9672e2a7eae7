//! Cursor pagination: the cursor is the last item's sort key, opaque to clients.

use serde::Serialize;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub limit: u32,
    /// Sort key of the last item already seen.
    pub after: Option<String>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
