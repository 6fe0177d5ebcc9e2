//! The route table. Every route is registered through [`Routes::add`] with its declared access,
//! so the inventory that the route-inventory test walks is the router itself, not a copy that
//! could drift.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

use crate::handlers::{
    account, api, assets, audit, auth, design, groups, home, policy, table_pages, tables, tokens, users, views,
};
use crate::middleware;
use crate::session;
use crate::state::AppState;

/// Who may reach a route. Enforcement is in the handlers' extractors and capability requests;
/// this declaration is what the inventory test holds them to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reachable without signing in.
    Public,
    /// Any signed-in user of the tenant.
    User,
    /// Tenant administrators only.
    Admin,
    /// Any signed-in user, then the table right from their groups (404 without any right on
    /// the table, 403 without the one the route needs).
    Table,
}

#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

struct Routes {
    router: Router<AppState>,
    info: Vec<RouteInfo>,
}

impl Routes {
    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.info.push(RouteInfo { method, path, access });
        self.router = self.router.route(path, handler);
        self
    }
}

fn table() -> Routes {
    use Access::*;
    Routes { router: Router::new(), info: Vec::new() }
        // assets and probes
        .add("GET", "/assets/app.css", Public, get(assets::app_css))
        .add("GET", "/assets/app.js", Public, get(assets::app_js))
        .add("GET", "/assets/icon.svg", Public, get(assets::icon_svg))
        .add("GET", "/favicon.ico", Public, get(assets::favicon))
        .add("GET", "/healthz", Public, get(assets::healthz))
        // sign-in
        .add("GET", "/login", Public, get(auth::login_page))
        .add("POST", "/login", Public, post(auth::login_submit))
        .add("POST", "/logout", User, post(auth::logout))
        // pages
        .add("GET", "/", User, get(home::home))
        .add("GET", "/account", User, get(account::account_page))
        .add("GET", "/account/password", User, get(account::password_form))
        .add("POST", "/account/password", User, post(account::change_password))
        .add("POST", "/account/language", User, post(account::set_language))
        .add("POST", "/account/sessions/{id}/revoke", User, post(account::revoke_session))
        .add("GET", "/account/tokens", User, get(tokens::page))
        .add("POST", "/account/tokens", User, post(tokens::create_page))
        .add("POST", "/account/tokens/{id}/revoke", User, post(tokens::revoke_page))
        .add("GET", "/tables", User, get(table_pages::list_tables))
        .add("POST", "/tables", Admin, post(table_pages::create_table))
        .add("GET", "/tables/trash", Admin, get(design::trash_page))
        .add("POST", "/tables/trash", Admin, post(design::trash_submit))
        .add("GET", "/tables/{tid}", Table, get(table_pages::show_table))
        .add("GET", "/tables/{tid}/design", Table, get(design::page))
        .add("POST", "/tables/{tid}/design", Table, post(design::submit))
        .add("GET", "/tables/{tid}/design/fields/{fid}/type", Table, get(design::retype_form))
        .add("POST", "/tables/{tid}/design/fields/{fid}/type", Table, post(design::retype_submit))
        .add("POST", "/tables/{tid}/fields", Table, post(table_pages::add_field))
        .add("GET", "/tables/{tid}/records/new", Table, get(table_pages::new_record))
        .add("POST", "/tables/{tid}/records", Table, post(table_pages::create_record))
        .add("GET", "/tables/{tid}/records/{rid}", Table, get(table_pages::edit_record))
        .add("POST", "/tables/{tid}/records/{rid}", Table, post(table_pages::update_record))
        .add("POST", "/tables/{tid}/records/{rid}/delete", Table, post(table_pages::delete_record))
        .add("GET", "/tables/{tid}/records/{rid}/history", Table, get(table_pages::record_history))
        .add("POST", "/tables/{tid}/bulk", Table, post(table_pages::bulk))
        .add("GET", "/tables/{tid}/export.csv", Table, get(tables::export_records))
        .add("POST", "/tables/{tid}/views", Table, post(views::create_page))
        .add("POST", "/tables/{tid}/views/{vid}/delete", Table, post(views::delete_page))
        .add("GET", "/tables/{tid}/import", Table, get(table_pages::import_form))
        .add("POST", "/tables/{tid}/import", Table, post(table_pages::import_upload))
        .add("GET", "/admin/users", Admin, get(users::list_users))
        .add("POST", "/admin/users", Admin, post(users::create_user))
        .add("GET", "/admin/users/new", Admin, get(users::new_user_form))
        .add("GET", "/admin/users/{id}", Admin, get(users::show_user))
        .add("GET", "/admin/users/{id}/edit", Admin, get(users::edit_user_form))
        .add("POST", "/admin/users/{id}/edit", Admin, post(users::update_user))
        .add("POST", "/admin/users/{id}/disable", Admin, post(users::disable_user))
        .add("POST", "/admin/users/{id}/enable", Admin, post(users::enable_user))
        .add("POST", "/admin/users/{id}/unlock", Admin, post(users::unlock_user))
        .add("POST", "/admin/users/{id}/reset-password", Admin, post(users::reset_password))
        .add("GET", "/admin/users/{id}/delete", Admin, get(users::delete_user_form))
        .add("POST", "/admin/users/{id}/delete", Admin, post(users::delete_user))
        .add("GET", "/admin/users/{id}/access", Admin, get(groups::user_access_page))
        .add("GET", "/admin/groups", Admin, get(groups::list_page))
        .add("POST", "/admin/groups", Admin, post(groups::create_page))
        .add("GET", "/admin/groups/{gid}", Admin, get(groups::show_page))
        .add("POST", "/admin/groups/{gid}/edit", Admin, post(groups::edit_page))
        .add("POST", "/admin/groups/{gid}/members", Admin, post(groups::members_page))
        .add("POST", "/admin/groups/{gid}/grants", Admin, post(groups::matrix_page))
        .add("POST", "/admin/groups/{gid}/delete", Admin, post(groups::delete_page))
        .add("GET", "/admin/groups/{gid}/tables/{tid}", Admin, get(groups::table_page))
        .add("POST", "/admin/groups/{gid}/tables/{tid}", Admin, post(groups::table_submit))
        .add("GET", "/admin/policy", Admin, get(policy::policy_page))
        .add("POST", "/admin/policy", Admin, post(policy::update_policy))
        .add("GET", "/admin/audit", Admin, get(audit::audit_page))
        .add("GET", "/admin/audit/export.csv", Admin, get(audit::export_audit))
        // JSON API
        .add("GET", "/api/v1/openapi.json", Public, get(api::openapi))
        .add("POST", "/api/v1/session", Public, post(api::create_session))
        .add("DELETE", "/api/v1/session", User, delete(api::delete_session))
        .add("GET", "/api/v1/me", User, get(api::me))
        .add("POST", "/api/v1/me/password", User, post(api::change_password))
        .add("GET", "/api/v1/me/tokens", User, get(tokens::api_list))
        .add("POST", "/api/v1/me/tokens", User, post(tokens::api_create))
        .add("DELETE", "/api/v1/me/tokens/{id}", User, delete(tokens::api_revoke))
        .add("GET", "/api/v1/users", Admin, get(api::list_users))
        .add("POST", "/api/v1/users", Admin, post(api::create_user))
        .add("GET", "/api/v1/users/{id}", Admin, get(api::get_user))
        .add("PATCH", "/api/v1/users/{id}", Admin, patch(api::update_user))
        .add("POST", "/api/v1/users/{id}/disable", Admin, post(api::disable_user))
        .add("POST", "/api/v1/users/{id}/enable", Admin, post(api::enable_user))
        .add("GET", "/api/v1/audit", Admin, get(api::list_audit))
        .add("GET", "/api/v1/groups", Admin, get(groups::api_list))
        .add("POST", "/api/v1/groups", Admin, post(groups::api_create))
        .add("GET", "/api/v1/groups/{gid}", Admin, get(groups::api_get))
        .add("PATCH", "/api/v1/groups/{gid}", Admin, patch(groups::api_update))
        .add("DELETE", "/api/v1/groups/{gid}", Admin, delete(groups::api_delete))
        .add("PUT", "/api/v1/groups/{gid}/members", Admin, put(groups::api_members))
        .add("PUT", "/api/v1/groups/{gid}/grants/{tid}", Admin, put(groups::api_grant))
        .add("GET", "/api/v1/users/{id}/access", Admin, get(groups::api_user_access))
        .add("GET", "/api/v1/tables", User, get(tables::list_tables))
        .add("POST", "/api/v1/tables", Admin, post(tables::create_table))
        .add("GET", "/api/v1/tables/{tid}", Table, get(tables::get_table))
        .add("PATCH", "/api/v1/tables/{tid}", Table, patch(design::api_update_table))
        .add("DELETE", "/api/v1/tables/{tid}", Table, delete(design::api_delete_table))
        .add("PUT", "/api/v1/tables/{tid}/fields/order", Table, put(design::api_reorder))
        .add("PATCH", "/api/v1/tables/{tid}/fields/{fid}", Table, patch(design::api_update_field))
        .add("POST", "/api/v1/tables/{tid}/fields/{fid}/retype", Table, post(design::api_retype))
        .add("DELETE", "/api/v1/tables/{tid}/fields/{fid}", Table, delete(design::api_delete_field))
        .add("GET", "/api/v1/trash", Admin, get(design::api_trash))
        .add("POST", "/api/v1/trash/tables/{tid}/restore", Admin, post(design::api_restore_table))
        .add("DELETE", "/api/v1/trash/tables/{tid}", Admin, delete(design::api_purge_table))
        .add("POST", "/api/v1/trash/tables/{tid}/fields/{fid}/restore", Admin, post(design::api_restore_field))
        .add("DELETE", "/api/v1/trash/tables/{tid}/fields/{fid}", Admin, delete(design::api_purge_field))
        .add("POST", "/api/v1/tables/{tid}/fields", Table, post(tables::add_field))
        .add("GET", "/api/v1/tables/{tid}/records", Table, get(tables::list_records))
        .add("POST", "/api/v1/tables/{tid}/records", Table, post(tables::create_record))
        .add("GET", "/api/v1/tables/{tid}/records/{rid}", Table, get(tables::get_record))
        .add("GET", "/api/v1/tables/{tid}/views", Table, get(views::api_list))
        .add("POST", "/api/v1/tables/{tid}/views", Table, post(views::api_create))
        .add("DELETE", "/api/v1/tables/{tid}/views/{vid}", Table, delete(views::api_delete))
        .add("GET", "/api/v1/tables/{tid}/export.csv", Table, get(tables::export_records))
        .add("POST", "/api/v1/tables/{tid}/import", Table, post(tables::import_records))
        .add("GET", "/api/v1/tables/{tid}/records/{rid}/history", Table, get(tables::record_history))
        .add("POST", "/api/v1/tables/{tid}/records/bulk-delete", Table, post(tables::bulk_delete))
        .add("POST", "/api/v1/tables/{tid}/records/bulk-update", Table, post(tables::bulk_update))
        .add("PATCH", "/api/v1/tables/{tid}/records/{rid}", Table, patch(tables::update_record))
        .add("DELETE", "/api/v1/tables/{tid}/records/{rid}", Table, delete(tables::delete_record))
}

/// Every route with its declared access.
pub fn inventory() -> Vec<RouteInfo> {
    table().info
}

/// The HTTPS application with all its layers. Layers wrap from the bottom up: the last added
/// runs first.
pub fn router(state: AppState) -> Router {
    table()
        .router
        .fallback(|| async { crate::error::AppError::NotFound })
        .layer(from_fn_with_state(state.clone(), session::session_layer))
        // the limit per route is enforced by `body_limit`; axum's own extractor default (2 MiB)
        // is switched off so that it cannot disagree
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(middleware::utf8_query))
        .layer(from_fn_with_state(state.clone(), middleware::body_limit))
        .layer(from_fn_with_state(state.clone(), middleware::origin_check))
        .layer(from_fn_with_state(state.clone(), middleware::client_ip))
        .layer(from_fn_with_state(state.clone(), middleware::host_and_headers))
        .layer(axum::middleware::from_fn(middleware::catch_panics))
        .layer(from_fn_with_state(state.clone(), middleware::edge))
        .with_state(state)
}
