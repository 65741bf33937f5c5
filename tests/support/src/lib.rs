pub mod certs;
pub mod controlplane;
pub mod helm;
pub mod sts;
