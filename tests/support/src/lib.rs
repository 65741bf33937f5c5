pub mod certs;
pub mod controlplane;
