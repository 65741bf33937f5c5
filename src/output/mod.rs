//! What the reconcile produces from the exchanged credentials: the Secret's data
//! ([`render`]; the image-pull Secret's, [`dockerconfig`]), writing and emptying it ([`secret`]), noticing someone else's edits
//! ([`tamper`]), and the names of the labels and annotations it carries ([`labels`]).
//! Rendering is pure; when a Secret renews is the exchange's arithmetic
//! ([`crate::exchange::renewal`]), from its grants' expiries.

pub mod azure;
pub mod dockerconfig;
pub mod gcp;
pub mod labels;
pub mod read_back;
pub mod render;
pub mod restart;
pub mod secret;
pub mod tamper;
