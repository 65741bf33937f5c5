//! The image-pull Secret's data: a Docker config (`.dockerconfigjson`) with one login per
//! registry, as `docker login` and Atmos's `aws/ecr` integration write it:
//! `auths["<host>"].auth = base64("AWS:" + token)`. Pure.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::exchange::ecr::RegistryToken;

/// The Secret type kubelets read `imagePullSecrets` from.
pub const SECRET_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// Its one data key.
pub const KEY: &str = ".dockerconfigjson";
/// The data of an emptied image-pull Secret: the API server requires the key, with JSON.
pub const EMPTY: &str = r#"{"auths":{}}"#;

/// The Secret data for `tokens` (one per registry).
pub fn render(tokens: &[RegistryToken]) -> BTreeMap<String, String> {
    let auths: Map<String, Value> = tokens
        .iter()
        .map(|t| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", t.username, t.password));
            (t.host.clone(), json!({ "auth": auth }))
        })
        .collect();
    let config = json!({ "auths": auths });
    BTreeMap::from([(KEY.to_owned(), config.to_string())])
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;

    #[test]
    fn each_registry_has_base64_of_user_colon_token() {
        let token = |host: &str, pass: &str| RegistryToken {
            host: host.into(),
            username: "AWS".into(),
            password: pass.into(),
            issued: Timestamp::UNIX_EPOCH,
            expires_at: Timestamp::UNIX_EPOCH,
        };
        let data = render(&[
            token("123456789012.dkr.ecr.us-east-2.amazonaws.com", "p1"),
            token("public.ecr.aws", "p2"),
        ]);
        let v: Value = serde_json::from_str(&data[KEY]).unwrap();
        let auth = |h: &str| {
            let b = v["auths"][h]["auth"].as_str().unwrap();
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap()
        };
        assert_eq!(auth("123456789012.dkr.ecr.us-east-2.amazonaws.com"), "AWS:p1");
        assert_eq!(auth("public.ecr.aws"), "AWS:p2");
        assert_eq!(data.len(), 1);
    }
}
