//! Query API parameters: parsing, the parameters each action takes, and AWS's input
//! constraints (with AWS's wording).

use super::error::StsError;

/// The form/query parameters of one request, in order of appearance.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parameters of the query string followed by those of a form-encoded body.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Self {
        let mut params: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        params.extend(form_urlencoded::parse(body).into_owned());
        Self(params)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

/// Whether `name` is a parameter of `action` (2011-06-15 model), or of every request.
fn takes(action: &str, name: &str) -> bool {
    if matches!(name, "Action" | "Version") || name.starts_with("X-Amz-") {
        return true;
    }
    let member_of = |list: &str, fields: &[&str]| -> bool {
        let Some(rest) = name.strip_prefix(list).and_then(|r| r.strip_prefix(".member.")) else {
            return false;
        };
        let (index, field) = rest.split_once('.').unwrap_or((rest, ""));
        !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) && (fields.contains(&field))
    };
    match action {
        "AssumeRoleWithWebIdentity" => {
            matches!(
                name,
                "RoleArn" | "RoleSessionName" | "WebIdentityToken" | "ProviderId" | "Policy" | "DurationSeconds"
            ) || member_of("PolicyArns", &["arn"])
        }
        "AssumeRole" => {
            matches!(
                name,
                "RoleArn"
                    | "RoleSessionName"
                    | "Policy"
                    | "DurationSeconds"
                    | "ExternalId"
                    | "SerialNumber"
                    | "TokenCode"
                    | "SourceIdentity"
            ) || member_of("PolicyArns", &["arn"])
                || member_of("Tags", &["Key", "Value"])
                || member_of("TransitiveTagKeys", &[""])
                || member_of("ProvidedContexts", &["ProviderArn", "ContextAssertion"])
        }
        _ => false,
    }
}

/// Rejects parameters the action does not have, e.g. `ExternalId` on
/// `AssumeRoleWithWebIdentity` (only `AssumeRole` takes an external id).
pub fn reject_unknown(action: &str, params: &Params) -> Result<(), StsError> {
    match params.names().find(|name| !takes(action, name)) {
        None => Ok(()),
        Some(name) => Err(StsError::validation(format!(
            "{name} is not a valid parameter for {action}"
        ))),
    }
}

pub fn required<'a>(params: &'a Params, name: &str, member: &str) -> Result<&'a str, StsError> {
    params
        .get(name)
        .ok_or_else(|| StsError::constraint(None, member, "Member must not be null"))
}

pub fn role_arn(params: &Params) -> Result<&str, StsError> {
    let arn = required(params, "RoleArn", "roleArn")?;
    check_length(arn, "roleArn", 20, 2048, false)?;
    Ok(arn)
}

/// `RoleSessionName`: 2–64 characters of `[\w+=,.@-]`.
pub fn role_session_name(params: &Params) -> Result<&str, StsError> {
    let name = required(params, "RoleSessionName", "roleSessionName")?;
    check_length(name, "roleSessionName", 2, 64, true)?;
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(StsError::constraint(
            Some(name),
            "roleSessionName",
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(name)
}

/// `ExternalId`: 2–1224 characters of `[\w+=,.@:\/-]`.
pub fn external_id(params: &Params) -> Result<Option<&str>, StsError> {
    let Some(id) = params.get("ExternalId") else {
        return Ok(None);
    };
    check_length(id, "externalId", 2, 1224, true)?;
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b))
    {
        return Err(StsError::constraint(
            Some(id),
            "externalId",
            "Member must satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
        ));
    }
    Ok(Some(id))
}

/// `DurationSeconds`, if given: an integer from `min` to 43200.
pub fn duration_seconds(params: &Params, min: u32) -> Result<Option<u32>, StsError> {
    let Some(raw) = params.get("DurationSeconds") else {
        return Ok(None);
    };
    let value: i64 = raw.parse().map_err(|_| {
        StsError::validation(format!(
            "1 validation error detected: Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must be an integer"
        ))
    })?;
    if value < i64::from(min) {
        return Err(StsError::constraint(
            Some(raw),
            "durationSeconds",
            &format!("Member must have value greater than or equal to {min}"),
        ));
    }
    if value > i64::from(super::config::AWS_MAX_SESSION_SECONDS) {
        return Err(StsError::constraint(
            Some(raw),
            "durationSeconds",
            "Member must have value less than or equal to 43200",
        ));
    }
    // In range 1..=43200, so it fits.
    Ok(u32::try_from(value).ok())
}

/// Checks an inline session `Policy` and returns its packed size as a percentage of the
/// allowed size, as `PackedPolicySize` reports it.
pub fn packed_policy_size(params: &Params) -> Result<Option<u32>, StsError> {
    let policy = params.get("Policy");
    let arns = params.names().filter(|n| n.starts_with("PolicyArns.member.")).count();
    if policy.is_none() && arns == 0 {
        return Ok(None);
    }
    if arns > 10 {
        return Err(StsError::constraint(
            None,
            "policyArns",
            "Member must have length less than or equal to 10",
        ));
    }
    // A made-up packing: the inline policy's length plus 200 per managed policy ARN, out of
    // 4096. Only the shape (a percentage, at most 100) matters to clients.
    let mut size = arns * 200;
    if let Some(policy) = policy {
        check_length(policy, "policy", 1, 2048, false)?;
        if serde_json::from_str::<serde_json::Value>(policy).is_err() {
            return Err(StsError::malformed_policy("Syntax errors in policy."));
        }
        size += policy.len();
    }
    let percent = u32::try_from((size * 100).div_ceil(4096)).unwrap_or(u32::MAX);
    if percent > 100 {
        return Err(StsError::packed_policy_too_large(format!(
            "Packed size of session policies exceeds the limit: {percent}% of allowed size."
        )));
    }
    Ok(Some(percent))
}

fn check_length(value: &str, member: &str, min: usize, max: usize, show_value: bool) -> Result<(), StsError> {
    let len = value.chars().count();
    let shown = show_value.then_some(value);
    if len < min {
        return Err(StsError::constraint(
            shown,
            member,
            &format!("Member must have length greater than or equal to {min}"),
        ));
    }
    if len > max {
        return Err(StsError::constraint(
            shown,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Params {
        Params::parse(None, s.as_bytes())
    }

    #[test]
    fn parses_query_then_body() {
        let p = Params::parse(Some("Action=A&X=1"), b"X=2&Y=a+b%2F");
        assert_eq!(p.get("Action"), Some("A"));
        assert_eq!(p.get("X"), Some("1"));
        assert_eq!(p.get("Y"), Some("a b/"));
    }

    #[test]
    fn rejects_parameters_an_action_does_not_take() {
        let p = params("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=x&ExternalId=e");
        let err = reject_unknown("AssumeRoleWithWebIdentity", &p).unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert!(err.message.contains("ExternalId"));
        let p = params("Action=AssumeRole&ExternalId=e&Tags.member.1.Key=k&PolicyArns.member.2.arn=a");
        assert!(reject_unknown("AssumeRole", &p).is_ok());
        let p = params("Action=GetCallerIdentity&RoleArn=x");
        assert!(reject_unknown("GetCallerIdentity", &p).is_err());
    }

    #[test]
    fn validates_session_names_and_durations() {
        assert!(role_session_name(&params("RoleSessionName=ok-name_1@x.y")).is_ok());
        for bad in ["RoleSessionName=a", "RoleSessionName=has+space%20", "X=1"] {
            assert_eq!(role_session_name(&params(bad)).unwrap_err().code, "ValidationError");
        }
        let long = format!("RoleSessionName={}", "a".repeat(65));
        assert!(role_session_name(&params(&long)).is_err());
        assert_eq!(
            duration_seconds(&params("DurationSeconds=900"), 900).unwrap(),
            Some(900)
        );
        assert!(duration_seconds(&params("DurationSeconds=899"), 900).is_err());
        assert!(duration_seconds(&params("DurationSeconds=43201"), 900).is_err());
        assert!(duration_seconds(&params("DurationSeconds=x"), 900).is_err());
        assert_eq!(duration_seconds(&params(""), 900).unwrap(), None);
    }

    #[test]
    fn sizes_session_policies() {
        assert_eq!(packed_policy_size(&params("")).unwrap(), None);
        assert!(packed_policy_size(&params("Policy={}")).unwrap().is_some());
        assert_eq!(
            packed_policy_size(&params("Policy=not-json")).unwrap_err().code,
            "MalformedPolicyDocument"
        );
    }
}
