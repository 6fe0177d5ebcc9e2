//! The table designs this node has read, so that a request does not read its table's design
//! from the database again while it has not changed.
//!
//! The database stays the only source of truth: every change to a tenant's catalogue raises
//! the tenant's design version (database triggers, whichever code made the change), and each
//! request reads that version with its session. An entry is used only when it was read at the
//! request's version; anything else is read again. A design is read after the version it is
//! tagged with, so an entry is never older than its tag, and a change made on another node is
//! seen by the next request here. Nothing here grants anything: the entry is the same
//! `TableDef` the store would return, and the permission engine decides as before.

use std::collections::HashMap;
use std::sync::Mutex;

use daicho_domain::ids::{TableId, TenantId};
use daicho_domain::table::TableDef;

/// How many designs a node keeps; when full it starts again (designs are cheap to re-read).
const MAX_ENTRIES: usize = 1024;

#[derive(Debug, Default)]
pub struct DesignCache {
    entries: Mutex<HashMap<(TenantId, TableId), (i64, TableDef)>>,
}

impl DesignCache {
    /// The design of `table` as read at design version `version`, if this node has it.
    pub fn get(&self, tenant: TenantId, table: TableId, version: i64) -> Option<TableDef> {
        let entries = self.entries.lock().ok()?;
        match entries.get(&(tenant, table)) {
            Some((v, def)) if *v == version => Some(def.clone()),
            _ => None,
        }
    }

    /// Keeps a design read after design version `version` was current.
    pub fn put(&self, tenant: TenantId, table: TableId, version: i64, def: &TableDef) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&(tenant, table)) {
            entries.clear();
        }
        entries.insert((tenant, table), (version, def.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str) -> TableDef {
        TableDef {
            id: TableId::new_random(),
            tenant_id: TenantId::new_random(),
            name: daicho_domain::table::Name::parse(name).expect("a valid name"),
            description: String::new(),
            fields: Vec::new(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_entry_serves_only_its_own_version_and_tenant() {
        let cache = DesignCache::default();
        let d = def("customers");
        cache.put(d.tenant_id, d.id, 7, &d);
        assert_eq!(cache.get(d.tenant_id, d.id, 7).map(|x| x.name), Some(d.name.clone()));
        assert!(cache.get(d.tenant_id, d.id, 8).is_none(), "a newer version reads again");
        assert!(cache.get(d.tenant_id, d.id, 6).is_none());
        assert!(cache.get(TenantId::new_random(), d.id, 7).is_none(), "another tenant never sees it");
        let renamed =
            TableDef { name: daicho_domain::table::Name::parse("clients").expect("a valid name"), ..d.clone() };
        cache.put(d.tenant_id, d.id, 8, &renamed);
        assert_eq!(cache.get(d.tenant_id, d.id, 8).map(|x| x.name), Some(renamed.name));
        assert!(cache.get(d.tenant_id, d.id, 7).is_none());
    }

    #[test]
    fn a_full_cache_starts_again() {
        let cache = DesignCache::default();
        let tables: Vec<TableDef> = (0..=MAX_ENTRIES).map(|_| def("t")).collect();
        for t in &tables {
            cache.put(t.tenant_id, t.id, 1, t);
        }
        let kept = tables.iter().filter(|t| cache.get(t.tenant_id, t.id, 1).is_some()).count();
        assert!((1..=MAX_ENTRIES).contains(&kept), "{kept}");
        let last = tables.last().expect("tables");
        assert!(cache.get(last.tenant_id, last.id, 1).is_some());
    }
}
