pub mod certs;
pub mod controlplane;
pub mod entra;
pub mod gcp;
pub mod helm;
pub mod registry;
pub mod sts;
