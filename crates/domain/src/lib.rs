//! Daicho's domain: tenants, users, the security policy, the permission engine, audit events and
//! the clock. It knows nothing of HTTP or SQL, so every front end (pages, JSON API, CLI, jobs)
//! and every store backend share one set of rules.

pub mod access;
pub mod audit;
pub mod clock;
pub mod error;
pub mod ids;
pub mod perm;
pub mod policy;
pub mod table;
pub mod tenant;
pub mod user;
pub mod view;

pub use access::{FieldAccess, Group, Rights, RowRule, RowScope, TableAccess, TableGrant, TableRight, TableScope};
pub use audit::{AuditAction, AuditEvent, AuditFilter, NewAuditEvent, Outcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{DomainError, FieldError, FieldErrors};
pub use ids::{FieldId, GroupId, SessionId, TableId, TenantId, TokenId, UserId, ViewId};
pub use perm::{
    LoginFlow, ManageDesign, ManageGroups, ManagePolicy, ManageUsers, OperatorScope, OwnAccount, Permission, Principal,
    ReadAudit, Scope, SystemScope, UseTables,
};
pub use policy::SecurityPolicy;
pub use tenant::{Tenant, TenantCode, TenantName};
pub use user::{DisplayName, Email, Lang, LanguagePref, LoginId, Role, User, UserStatus};
