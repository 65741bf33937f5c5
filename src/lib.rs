//! atmos-auth-controller: reconciles Atmos auth profiles (`AuthProfile`, `Identity`) into
//! Secrets of refreshed AWS role credentials.

pub mod api;
pub mod cli;
pub mod controller;
pub mod exchange;
pub mod import;
pub mod output;
pub mod resolve;
pub mod runtime;
pub mod settings;
pub mod telemetry;
pub mod util;
