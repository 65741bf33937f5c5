pub mod sts;
