//! atmos-auth-controller: reconciles Atmos auth profiles (`AuthProfile`, `Identity`) into
//! Secrets of refreshed AWS role credentials.

pub mod api;
pub mod credentials;
pub mod labels;
pub mod resolve;
