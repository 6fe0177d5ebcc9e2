//! The permission engine: the one place that decides what a principal may do.
//!
//! A handler's first statement asks for the permission it needs:
//! `let scope = who.authorize::<ManageUsers>()?;`. The returned [`Scope`] can only be made here
//! (its fields are private and it has no public constructor), and the store's methods take it,
//! so the store is reachable only through this engine, and the tenant that every query is
//! limited to comes from the authenticated principal, never from the request.
//! Deny by default: a permission lists the roles that hold it; everything else is refused.

use std::marker::PhantomData;

use crate::error::DomainError;
use crate::ids::{SessionId, TenantId, UserId};
use crate::user::{LoginId, Role};

/// A permission, named by a marker type.
pub trait Permission: Send + Sync + 'static {
    const NAME: &'static str;
    fn granted_to(role: Role) -> bool;
}

macro_rules! permission {
    ($(#[$m:meta])* $name:ident, $label:literal, |$r:ident| $rule:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Permission for $name {
            const NAME: &'static str = $label;
            fn granted_to($r: Role) -> bool {
                $rule
            }
        }
    };
}

permission!(
    /// Read and change one's own account: password, sessions, language.
    OwnAccount, "own_account", |_r| true
);
permission!(
    /// List, create, edit, disable, delete users; reset passwords; unlock accounts.
    ManageUsers, "manage_users", |r| r == Role::TenantAdmin
);
permission!(
    /// Change the tenant's security policy.
    ManagePolicy, "manage_policy", |r| r == Role::TenantAdmin
);
permission!(
    /// Search, read and export the tenant's operation history.
    ReadAudit, "read_audit", |r| r == Role::TenantAdmin
);

permission!(
    /// Create tables and change their design (fields and rules).
    ManageDesign, "manage_design", |r| r == Role::TenantAdmin
);
permission!(
    /// Use the tenant's tables: list them and ask for table rights, which come from groups (see
    /// [`crate::access`]); every user holds it, and holds nothing on a table by it alone.
    UseTables, "use_tables", |_r| true
);
permission!(
    /// Create, change and delete groups, their members and their table rights.
    ManageGroups, "manage_groups", |r| r == Role::TenantAdmin
);

/// The authenticated user behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub login_id: LoginId,
    pub role: Role,
    pub session_id: SessionId,
}

impl Principal {
    /// Grants `P` within the principal's own tenant, or refuses.
    pub fn authorize<P: Permission>(&self) -> Result<Scope<P>, DomainError> {
        if P::granted_to(self.role) {
            Ok(Scope { tenant_id: self.tenant_id, actor: self.user_id, session_id: self.session_id, _p: PhantomData })
        } else {
            Err(DomainError::Forbidden)
        }
    }

    pub fn may<P: Permission>(&self) -> bool {
        P::granted_to(self.role)
    }
}

/// Proof that `actor` holds permission `P` in `tenant_id`. Only [`Principal::authorize`] makes one.
#[derive(Debug)]
pub struct Scope<P: Permission> {
    tenant_id: TenantId,
    actor: UserId,
    session_id: SessionId,
    _p: PhantomData<P>,
}

impl<P: Permission> Scope<P> {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
    pub fn actor(&self) -> UserId {
        self.actor
    }
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }
}

/// The operator's capability: creating tenants and reading across them. Only the local command
/// line makes one (the operator console is reachable only on the server itself); no HTTP route
/// can, which the route inventory test and a grep for `OperatorScope::local` both show.
#[derive(Debug)]
pub struct OperatorScope {
    _private: (),
}

impl OperatorScope {
    /// For the `daicho` command line, run by the operator on the server.
    pub fn local() -> Self {
        Self { _private: () }
    }
}

/// The capability of scheduled work (session purge, later backups and monitors): it acts on
/// the installation as a whole, never for a user. Only the job runner in `crates/daicho` makes
/// one.
#[derive(Debug)]
pub struct SystemScope {
    _private: (),
}

impl SystemScope {
    pub fn jobs() -> Self {
        Self { _private: () }
    }
}

/// The capability of the unauthenticated login and session-lookup path: find a tenant by code, a
/// credential by login ID, a session by token hash, and record the outcome. It reads nothing a
/// client sees beyond what the generic login answer reveals.
#[derive(Debug)]
pub struct LoginFlow {
    _private: (),
}

impl LoginFlow {
    pub fn new() -> Self {
        Self { _private: () }
    }
}

impl Default for LoginFlow {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            tenant_id: TenantId::new_random(),
            user_id: UserId::new_random(),
            login_id: LoginId::parse("u").unwrap_or_else(|_| unreachable!()),
            role,
            session_id: SessionId::new_random(),
        }
    }

    #[test]
    fn members_hold_only_their_own_account() {
        let m = principal(Role::Member);
        assert!(m.authorize::<OwnAccount>().is_ok());
        assert!(matches!(m.authorize::<ManageUsers>(), Err(DomainError::Forbidden)));
        assert!(matches!(m.authorize::<ManagePolicy>(), Err(DomainError::Forbidden)));
        assert!(matches!(m.authorize::<ReadAudit>(), Err(DomainError::Forbidden)));
    }

    #[test]
    fn admins_hold_every_tenant_permission_in_their_own_tenant_only() {
        let a = principal(Role::TenantAdmin);
        let s = a.authorize::<ManageUsers>().unwrap_or_else(|_| unreachable!());
        assert_eq!(s.tenant_id(), a.tenant_id);
        assert_eq!(s.actor(), a.user_id);
        assert!(a.authorize::<ReadAudit>().is_ok());
    }
}
