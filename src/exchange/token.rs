//! The first credential of every chain: a ServiceAccount token from the TokenRequest API,
//! always for a ServiceAccount in the Identity's own namespace.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::resolve::TokenSource;

/// Why no token could be had. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The ServiceAccount does not exist.
    #[error(
        "ServiceAccount {namespace}/{name} not found: create it (kubectl -n {namespace} create serviceaccount {name}) or set spec.serviceAccountName"
    )]
    ServiceAccountNotFound {
        /// Namespace.
        namespace: String,
        /// ServiceAccount name.
        name: String,
    },
    /// The controller may not mint tokens for it.
    #[error(
        "the controller may not create tokens for ServiceAccount {namespace}/{name}: bind the ClusterRole atmos-auth-controller-token-creator in namespace {namespace} with a Role or RoleBinding whose rule names resourceNames [{name}] (see docs/install.md, \"Who may use which ServiceAccount\")"
    )]
    Forbidden {
        /// Namespace.
        namespace: String,
        /// ServiceAccount name.
        name: String,
    },
    /// The API server refused or failed otherwise.
    #[error("TokenRequest for ServiceAccount {namespace}/{name} failed: {source}")]
    Api {
        /// Namespace.
        namespace: String,
        /// ServiceAccount name.
        name: String,
        /// The API error (no token in it: the request failed).
        #[source]
        source: kube::Error,
    },
    /// The API server answered without a token.
    #[error("TokenRequest for ServiceAccount {namespace}/{name} returned no token")]
    Empty {
        /// Namespace.
        namespace: String,
        /// ServiceAccount name.
        name: String,
    },
}

impl TokenError {
    /// Condition reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::ServiceAccountNotFound { .. } => "ServiceAccountNotFound",
            Self::Forbidden { .. } => "TokenRequestForbidden",
            Self::Api { .. } | Self::Empty { .. } => "TokenRequestFailed",
        }
    }

    /// Whether a quick retry may help: only API failures other than 4xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api {
                source: kube::Error::Api(status),
                ..
            // 401: the controller's own credentials are being rotated.
            } => status.code >= 500 || status.code == 429 || status.code == 401,
            Self::Api { .. } => true,
            _ => false,
        }
    }
}

/// Requests a token for `source.service_account` in `namespace`.
pub async fn request_token(client: &Client, namespace: &str, source: &TokenSource) -> Result<String, TokenError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![source.audience.clone()],
            expiration_seconds: Some(source.expiration_seconds),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let name = &source.service_account;
    let ids = || (namespace.to_owned(), name.clone());
    match api.create_token_request(name, &PostParams::default(), &req).await {
        Ok(tr) => tr.status.map(|s| s.token).filter(|t| !t.is_empty()).ok_or_else(|| {
            let (namespace, name) = ids();
            TokenError::Empty { namespace, name }
        }),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let (namespace, name) = ids();
            Err(TokenError::ServiceAccountNotFound { namespace, name })
        }
        Err(kube::Error::Api(s)) if s.code == 403 => {
            let (namespace, name) = ids();
            Err(TokenError::Forbidden { namespace, name })
        }
        Err(source) => {
            let (namespace, name) = ids();
            Err(TokenError::Api {
                namespace,
                name,
                source,
            })
        }
    }
}
