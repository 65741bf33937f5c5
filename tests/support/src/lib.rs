pub mod certs;
pub mod controlplane;
pub mod sts;
