//! Small helpers shared by every layer: YAML reading with one budget ([`yaml`]), redaction of
//! secrets in text ([`redact`]), times ([`time`]) and maps keyed by (namespace, name)
//! ([`keyed`]).

pub mod keyed;
pub mod redact;
pub mod time;
pub mod yaml;
