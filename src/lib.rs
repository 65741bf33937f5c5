//! atmos-auth-controller: reconciles Atmos auth profiles (`AuthProfile`, `Identity`) into
//! Secrets of refreshed AWS role credentials.

pub mod api;
pub mod cli;
pub mod controller;
pub mod exchange;
pub mod import;
pub mod keyed;
pub mod labels;
pub mod redact;
pub mod render;
pub mod renewal;
pub mod resolve;
pub mod runtime;
pub mod schema_limits;
pub mod secret;
pub mod settings;
pub mod tamper;
pub mod telemetry;
pub mod time;
pub mod yaml;
