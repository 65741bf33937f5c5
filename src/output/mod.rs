//! What the reconcile produces from the exchanged credentials: the Secret's data
//! ([`render`]), when it renews ([`renewal`]), writing and emptying it ([`secret`]), noticing
//! someone else's edits ([`tamper`]), and the names of the labels and annotations it carries
//! ([`labels`]). Rendering and renewal arithmetic are pure.

pub mod labels;
pub mod render;
pub mod renewal;
pub mod secret;
pub mod tamper;
