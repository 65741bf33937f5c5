//! Throw-away PKI for the local control plane: one CA that signs the apiserver's serving
//! certificate and every client certificate, plus the service-account token signing key.
//! All keys are ECDSA P-256 (rcgen's default; kube-apiserver accepts it everywhere).

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A PEM certificate and its PEM (PKCS#8) private key.
#[derive(Clone)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A PEM key pair: PKCS#8 private key and SPKI public key.
#[derive(Clone)]
pub struct KeyPairPem {
    pub private_pem: String,
    pub public_pem: String,
}

/// A self-signed certificate authority that can issue server and client certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl Ca {
    pub fn new(common_name: &str) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert_pem = params.self_signed(&key).context("self-signing the CA")?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A TLS server certificate; `sans` may mix DNS names and IP addresses.
    pub fn issue_server(&self, common_name: &str, sans: &[&str]) -> Result<CertKey> {
        let sans = sans.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        self.issue(common_name, &[], sans, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate: Kubernetes reads the user from the CN and groups from the Os.
    pub fn issue_client(&self, user: &str, groups: &[&str]) -> Result<CertKey> {
        self.issue(user, groups, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        common_name: &str,
        organizations: &[&str],
        sans: Vec<String>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<CertKey> {
        let mut params =
            CertificateParams::new(sans).with_context(|| format!("certificate parameters for {common_name}"))?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        for org in organizations {
            params.distinguished_name.push(DnType::OrganizationName, *org);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("signing the certificate for {common_name}"))?;
        Ok(CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A fresh key pair, e.g. for signing service-account tokens.
pub fn generate_key_pair() -> Result<KeyPairPem> {
    let key = KeyPair::generate()?;
    Ok(KeyPairPem {
        private_pem: key.serialize_pem(),
        public_pem: key.public_key_pem(),
    })
}
