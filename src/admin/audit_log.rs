//! Reading the audit trail.

use super::{AdminError, AdminService};
use crate::domain::{AuditRecord, Page, PageRequest};
use crate::store::AuditFilter;

impl AdminService {
    pub async fn list_audit(
        &self,
        filter: AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>, AdminError> {
        if let Some(after) = &page.after
            && after.parse::<i64>().is_err()
        {
            return Err(AdminError::invalid(
                "cursor",
                "cursor is not one this server gave",
            ));
        }
        let items = self.store.list_audit(&filter, &page).await?;
        let next_cursor = (items.len() == page.limit as usize)
            .then(|| items.last().map(|r| r.seq.to_string()))
            .flatten();
        Ok(Page { items, next_cursor })
    }
}
