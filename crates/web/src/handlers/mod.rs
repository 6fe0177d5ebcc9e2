//! Handlers, one module per resource. HTML and JSON handlers for the same operation call the
//! same function in [`ops`], so both paths obey the same rules and record the same events.

pub mod account;
pub mod api;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod design;
pub mod groups;
pub mod home;
pub mod ops;
pub mod policy;
pub mod table_pages;
pub mod tables;
pub mod tokens;
pub mod users;
pub mod views;
