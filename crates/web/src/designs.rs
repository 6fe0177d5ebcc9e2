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
//!
//! The grants a user holds through their groups are kept the same way: the design version
//! also moves whenever a group, its members or its grants change (the same triggers), so a
//! user's grants are read again on the first request after any change to the tenant's
//! permission matrix, on every node. An entry only saves a read: it holds what the store
//! returned for that user at that version, and the engine applies it as before.

use std::collections::HashMap;
use std::sync::Mutex;

use daicho_domain::access::TableGrant;
use daicho_domain::ids::{TableId, TenantId, UserId};
use daicho_domain::table::TableDef;

/// How many designs (and, apart, how many users' grants) a node keeps; when full it starts
/// again (both are cheap to re-read).
const MAX_ENTRIES: usize = 1024;

/// A user's grants, keyed by tenant and user, with the design version they were read at.
type GrantEntries = HashMap<(TenantId, UserId), (i64, Vec<TableGrant>)>;

#[derive(Debug, Default)]
pub struct DesignCache {
    entries: Mutex<HashMap<(TenantId, TableId), (i64, TableDef)>>,
    grants: Mutex<GrantEntries>,
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

    /// The grants `user` held through their groups as read at design version `version`, if
    /// this node has them.
    pub fn grants(&self, tenant: TenantId, user: UserId, version: i64) -> Option<Vec<TableGrant>> {
        let entries = self.grants.lock().ok()?;
        match entries.get(&(tenant, user)) {
            Some((v, grants)) if *v == version => Some(grants.clone()),
            _ => None,
        }
    }

    /// The design version at which this node holds the grants of `user`, if it holds them
    /// (for tests and diagnostics; a user id belongs to one tenant).
    pub fn grants_version(&self, user: UserId) -> Option<i64> {
        self.grants.lock().ok()?.iter().find(|((_, u), _)| *u == user).map(|(_, (v, _))| *v)
    }

    /// Keeps the grants of `user` read after design version `version` was current.
    pub fn put_grants(&self, tenant: TenantId, user: UserId, version: i64, grants: &[TableGrant]) {
        let Ok(mut entries) = self.grants.lock() else { return };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&(tenant, user)) {
            entries.clear();
        }
        entries.insert((tenant, user), (version, grants.to_vec()));
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

    fn grant(table: TableId, rights: &[daicho_domain::access::TableRight]) -> TableGrant {
        TableGrant {
            group: daicho_domain::ids::GroupId::new_random(),
            table,
            rights: daicho_domain::access::Rights::of(rights.iter().copied()),
            rows: daicho_domain::access::RowRule::All,
            fields: Default::default(),
        }
    }

    #[test]
    fn grants_serve_only_their_own_version_user_and_tenant() {
        use daicho_domain::access::TableRight::{Edit, View};
        let cache = DesignCache::default();
        let (tenant, user, table) = (TenantId::new_random(), UserId::new_random(), TableId::new_random());
        let both = vec![grant(table, &[View, Edit])];
        cache.put_grants(tenant, user, 3, &both);
        assert_eq!(cache.grants(tenant, user, 3), Some(both.clone()));
        assert_eq!(cache.grants_version(user), Some(3));
        assert!(cache.grants(tenant, user, 4).is_none(), "a change to the matrix reads again");
        assert!(cache.grants(tenant, user, 2).is_none());
        assert!(cache.grants(tenant, UserId::new_random(), 3).is_none(), "another user never gets them");
        assert!(cache.grants(TenantId::new_random(), user, 3).is_none(), "nor another tenant");
        // Fewer rights at the next version replace the old entry; the old version is gone.
        let fewer = vec![grant(table, &[View])];
        cache.put_grants(tenant, user, 4, &fewer);
        assert_eq!(cache.grants(tenant, user, 4), Some(fewer));
        assert!(cache.grants(tenant, user, 3).is_none());
        // No grants at all is kept too (a member of no group).
        cache.put_grants(tenant, user, 5, &[]);
        assert_eq!(cache.grants(tenant, user, 5), Some(Vec::new()));
        // Designs and grants are kept apart.
        assert!(cache.get(tenant, table, 5).is_none());
    }

    #[test]
    fn a_full_grants_cache_starts_again() {
        let cache = DesignCache::default();
        let tenant = TenantId::new_random();
        let users: Vec<UserId> = (0..=MAX_ENTRIES).map(|_| UserId::new_random()).collect();
        for u in &users {
            cache.put_grants(tenant, *u, 1, &[]);
        }
        let kept = users.iter().filter(|u| cache.grants(tenant, **u, 1).is_some()).count();
        assert!((1..=MAX_ENTRIES).contains(&kept), "{kept}");
        assert!(cache.grants(tenant, *users.last().expect("users"), 1).is_some());
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
