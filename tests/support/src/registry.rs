//! A real OCI registry for the tests: distribution's `registry` (built from Go modules by
//! `build-binaries.sh registry`, with `crane`), served over TLS with the test CA, with token
//! authentication whose realm is [`TokenService`]: a client's Basic `AWS:<token>` is checked
//! against the tokens the local ECR issued and has not expired, and answered with a registry
//! JWT signed by a key whose certificate is the registry's `rootcertbundle`, living at most
//! as long as the ECR token. So a push or pull succeeds only with an ECR token still valid.
//!
//! [`Registry::crane`] runs `crane` the way a kubelet's client would see an ECR registry: the
//! image's host is `<account>.dkr.ecr.<region>.amazonaws.com` on port 443, mapped to the
//! registry's loopback address by an `/etc/hosts` bind-mounted in a mount namespace of its
//! own (`unshare --mount`; needs root), trusting the test CA through `SSL_CERT_FILE`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use jiff::Timestamp;
use serde_json::json;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::certs::{Ca, CertKey};
use crate::sts::ecr::EcrTokens;
use crate::sts::thread::ServerThread;

/// The directory holding `registry` and `crane` (built once per machine, then cached);
/// `ATMOS_AUTH_REGISTRY_BIN` overrides it.
pub fn registry_bin_dir() -> Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(dir) = std::env::var_os("ATMOS_AUTH_REGISTRY_BIN") {
        return Ok(dir.into());
    }
    DIR.get_or_init(|| crate::controlplane::build_binaries("registry", "crane").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

/// What the token service needs to answer.
struct Realm {
    tokens: Arc<EcrTokens>,
    service: String,
    issuer: String,
    key: jsonwebtoken::EncodingKey,
    x5c: String,
    max_lifetime: i64,
}

/// The host name of the token service: clients such as go-containerregistry refuse a realm
/// at a loopback IP literal (an SSRF guard), so [`Registry::crane`] maps this name to
/// 127.0.0.1 in its private `/etc/hosts`.
pub const REALM_HOST: &str = "ecr-token.registry.test";

/// The registry's token service (the realm), over HTTPS on 127.0.0.1.
pub struct TokenService {
    server: ServerThread,
    signing_cert_pem: String,
    service: String,
    issuer: String,
}

impl TokenService {
    /// Starts a realm for registry `service` that accepts the tokens in `tokens`; its JWTs
    /// live at most `max_lifetime_seconds` and never beyond the ECR token.
    pub fn start(tokens: Arc<EcrTokens>, ca: &Ca, service: &str, max_lifetime_seconds: i64) -> Result<Self> {
        let signing_ca = Ca::new("atmos-auth test registry token signer")?;
        let signer = signing_ca.issue_server("registry-token-signer", &["registry-token-signer"])?;
        let der = CertificateDer::from_pem_slice(signer.cert_pem.as_bytes()).context("signer certificate")?;
        let realm = Realm {
            tokens,
            service: service.to_owned(),
            issuer: "local-ecr-token-service".to_owned(),
            key: jsonwebtoken::EncodingKey::from_ec_pem(signer.key_pem.as_bytes()).context("signer key")?,
            x5c: base64::engine::general_purpose::STANDARD.encode(der.as_ref()),
            max_lifetime: max_lifetime_seconds,
        };
        let issuer = realm.issuer.clone();
        let app = Router::new().route("/token", get(token)).with_state(Arc::new(realm));
        let tls = tls(&ca.issue_server("registry token service", &[REALM_HOST, "127.0.0.1"])?)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the token service")?;
        let server = ServerThread::spawn("registry-realm", listener, app, Some(tls))?;
        Ok(Self {
            server,
            signing_cert_pem: signing_ca.cert_pem().to_owned(),
            service: service.to_owned(),
            issuer,
        })
    }

    /// `https://REALM_HOST:PORT/token`.
    pub fn url(&self) -> String {
        format!("https://{REALM_HOST}:{}/token", self.server.addr().port())
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    scope: Option<String>,
}

/// Docker's token protocol: Basic `AWS:<ECR token>` in, a registry JWT out (401 otherwise).
async fn token(State(realm): State<Arc<Realm>>, headers: HeaderMap, Query(q): Query<TokenQuery>) -> Response {
    let now = Timestamp::now();
    let Some(ecr) = basic_password(&headers).and_then(|p| realm.tokens.valid(&p, now)) else {
        tracing::info!("registry token service: refused (no valid ECR token)");
        return (
            StatusCode::UNAUTHORIZED,
            "an ECR token issued by the local ECR and not expired is required",
        )
            .into_response();
    };
    let lifetime = realm
        .max_lifetime
        .min(ecr.expires_at.as_second() - now.as_second())
        .max(1);
    let access: Vec<serde_json::Value> = q
        .scope
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let mut jti = [0u8; 12];
    rand::RngExt::fill(&mut rand::rng(), &mut jti[..]);
    let claims = json!({
        "iss": realm.issuer, "sub": "AWS", "aud": realm.service,
        "iat": now.as_second(), "nbf": now.as_second() - 5, "exp": now.as_second() + lifetime,
        "jti": hex::encode(jti), "access": access,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![realm.x5c.clone()]);
    match jsonwebtoken::encode(&header, &claims, &realm.key) {
        Ok(jwt) => axum::Json(json!({"token": jwt, "access_token": jwt, "expires_in": lifetime})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
    let (user, pass) = String::from_utf8(raw)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_owned(), p.to_owned()))?;
    (user == "AWS").then_some(pass)
}

fn tls(cert: &CertKey) -> Result<TlsAcceptor> {
    let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes())?];
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A running `registry` on `ip:443`, serving `host` over TLS, authenticating with a
/// [`TokenService`]. Dropping it stops it.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    host: String,
    ip: Ipv4Addr,
    bin: PathBuf,
}

impl Registry {
    /// Starts the registry for `host` on `ip:443` (a loopback address of its own, so tests
    /// do not share a port).
    pub fn start(ca: &Ca, (host, ip): (&str, Ipv4Addr), realm: &TokenService) -> Result<Self> {
        let bin = registry_bin_dir()?;
        let dir = tempfile::tempdir()?;
        let cert = ca.issue_server(host, &[host])?;
        let write = |name: &str, text: &str| -> Result<PathBuf> {
            let path = dir.path().join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        let crt = write("tls.crt", &cert.cert_pem)?;
        let key = write("tls.key", &cert.key_pem)?;
        let bundle = write("token-signer-ca.pem", &realm.signing_cert_pem)?;
        write("ca.pem", ca.cert_pem())?;
        let config = format!(
            "version: 0.1\nlog: {{level: info}}\nstorage: {{filesystem: {{rootdirectory: {data}}}}}\n\
             http:\n  addr: {ip}:443\n  secret: local-test-secret\n  tls: {{certificate: {crt}, key: {key}}}\n\
             auth:\n  token:\n    realm: {realm_url}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {bundle}\n",
            data = dir.path().join("data").display(),
            crt = crt.display(),
            key = key.display(),
            realm_url = realm.url(),
            service = realm.service,
            issuer = realm.issuer,
            bundle = bundle.display(),
        );
        let config_path = write("config.yml", &config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(bin.join("registry"))
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting registry")?;
        let registry = Self {
            child,
            dir,
            host: host.to_owned(),
            ip,
            bin,
        };
        registry.wait_listening()?;
        Ok(registry)
    }

    fn wait_listening(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect((self.ip, 443)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "registry not listening on {}:443 after 20 s; log:\n{}",
            self.ip,
            self.log()
        )
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `host/repository` references are made with this host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `crane ARGS` with `DOCKER_CONFIG=docker_config` (a directory holding
    /// `config.json`), the host mapped to the registry in a private `/etc/hosts`, and the
    /// test CA trusted; `stdin`, if any, is its input.
    pub fn crane(&self, docker_config: &Path, args: &[&str]) -> Result<Output> {
        let hosts = self.dir.path().join("hosts");
        std::fs::write(
            &hosts,
            format!("127.0.0.1 localhost {REALM_HOST}\n{} {}\n", self.ip, self.host),
        )?;
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--",
            "sh",
            "-c",
            r#"mount --bind "$1" /etc/hosts && shift && exec "$@""#,
            "sh",
        ])
        .arg(&hosts)
        .arg(self.bin.join("crane"))
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .env("SSL_CERT_FILE", self.dir.path().join("ca.pem"))
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null());
        cmd.output().context("running crane under unshare --mount")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
