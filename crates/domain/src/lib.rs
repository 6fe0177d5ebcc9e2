//! Daicho's domain: tenants, users, the security policy, the permission engine, audit events and
//! the clock. It knows nothing of HTTP or SQL, so every front end (pages, JSON API, CLI, jobs)
//! and every store backend share one set of rules.

pub mod audit;
pub mod clock;
pub mod error;
pub mod ids;
pub mod perm;
pub mod policy;
pub mod table;
pub mod tenant;
pub mod user;

pub use audit::{AuditAction, AuditEvent, AuditFilter, NewAuditEvent, Outcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{DomainError, FieldError, FieldErrors};
pub use ids::{FieldId, SessionId, TableId, TenantId, UserId};
pub use perm::{
    LoginFlow, ManageDesign, ManagePolicy, ManageTableData, ManageUsers, OperatorScope, OwnAccount, Permission,
    Principal, ReadAudit, Scope, SystemScope,
};
pub use policy::SecurityPolicy;
pub use tenant::{Tenant, TenantCode, TenantName};
pub use user::{DisplayName, Email, Lang, LanguagePref, LoginId, Role, User, UserStatus};
