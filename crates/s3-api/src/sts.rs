//! STS `AssumeRoleWithWebIdentity` on the gateway's endpoint (AWS query protocol): a token
//! from a configured OpenID issuer in, temporary SigV4 credentials out. The request is
//! unsigned, as AWS's is; it arrives as a form POST to `/` (the SDKs) or as a GET with the
//! parameters in the query string. `RoleArn` is accepted and not interpreted: what the
//! session may do follows from the token's user and groups, the grants, and `Policy`
//! (coffer's narrowing as JSON: `{"read_only": true, "buckets": [...], "classification": "..."}`).

use coffer_gateway::Gateway;
use coffer_gateway::sessions::StsError;
use http::{HeaderMap, Method, StatusCode, Uri};

/// The most bytes of parameters read (tokens are a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Is this an STS call rather than an S3 one? S3 has no form POST to `/`.
pub fn is_sts_request(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    if uri.path() != "/" {
        return false;
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    (method == Method::POST && form)
        || (method == Method::GET && uri.query().is_some_and(|q| q.split('&').any(|p| p.starts_with("Action="))))
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn params(s: &str) -> Vec<(String, String)> {
    let decode = |v: &str| urlencoding::decode(&v.replace('+', " ")).map(|c| c.into_owned()).unwrap_or_default();
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> (StatusCode, String) {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{NS}\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        xml_escape(message)
    );
    (status, body)
}

fn iso8601(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Answer an STS call whose parameters are `query` (GET) or `body` (POST).
pub async fn handle(gw: &Gateway, query: Option<&str>, body: &[u8], request_id: &str) -> (StatusCode, String) {
    let mut all = params(query.unwrap_or(""));
    all.extend(params(&String::from_utf8_lossy(body)));
    let get = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let bad = StatusCode::BAD_REQUEST;
    match get("Action") {
        Some("AssumeRoleWithWebIdentity") => {}
        Some(other) => return error(bad, "InvalidAction", &format!("Could not find operation {other}"), request_id),
        None => return error(bad, "MissingAction", "The request must contain the parameter Action", request_id),
    }
    let Some(token) = get("WebIdentityToken").filter(|t| !t.is_empty()) else {
        return error(bad, "MissingParameter", "The request must contain the parameter WebIdentityToken", request_id);
    };
    let duration = match get("DurationSeconds").map(str::parse::<i64>) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => return error(bad, "ValidationError", "DurationSeconds must be an integer", request_id),
    };
    let session_name = get("RoleSessionName").unwrap_or("coffer").to_owned();
    let role = get("RoleArn").unwrap_or("arn:aws:iam::000000000000:role/coffer").to_owned();
    match gw.assume_role_with_web_identity(token, duration, get("Policy")).await {
        Ok((c, user)) => {
            let role_name = role.rsplit('/').next().unwrap_or("coffer");
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssumeRoleWithWebIdentityResponse xmlns=\"{NS}\">\
                 <AssumeRoleWithWebIdentityResult>\
                 <SubjectFromWebIdentityToken>{user}</SubjectFromWebIdentityToken>\
                 <AssumedRoleUser><Arn>arn:aws:sts::000000000000:assumed-role/{role_name}/{session}</Arn>\
                 <AssumedRoleId>{id}:{session}</AssumedRoleId></AssumedRoleUser>\
                 <Credentials><AccessKeyId>{id}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>\
                 <SessionToken>{token}</SessionToken><Expiration>{exp}</Expiration></Credentials>\
                 </AssumeRoleWithWebIdentityResult>\
                 <ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>\
                 </AssumeRoleWithWebIdentityResponse>",
                user = xml_escape(&user),
                role_name = xml_escape(role_name),
                session = xml_escape(&session_name),
                id = c.access_key_id,
                secret = c.secret_access_key,
                token = xml_escape(&c.session_token),
                exp = iso8601(c.expires_at),
            );
            (StatusCode::OK, body)
        }
        Err(e) => {
            let code = match &e {
                StsError::InvalidIdentityToken(_) => "InvalidIdentityToken",
                StsError::ExpiredToken(_) => "ExpiredTokenException",
                StsError::Validation(_) => "ValidationError",
                StsError::MalformedPolicy(_) => "MalformedPolicyDocument",
                StsError::IdpCommunication(_) => "IDPCommunicationError",
                StsError::NotConfigured => "InvalidAction",
            };
            tracing::info!(target: "coffer::audit", allowed = false, reason = %e, "session refused");
            error(bad, code, &e.to_string(), request_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_requests_are_told_apart_from_s3() {
        let form = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
            h
        };
        let post = Method::POST;
        assert!(is_sts_request(
            &post,
            &"/".parse().unwrap(),
            &form("application/x-www-form-urlencoded; charset=utf-8")
        ));
        assert!(!is_sts_request(&post, &"/b?delete".parse().unwrap(), &form("application/x-www-form-urlencoded")));
        assert!(!is_sts_request(&post, &"/".parse().unwrap(), &form("application/xml")));
        assert!(is_sts_request(
            &Method::GET,
            &"/?Action=AssumeRoleWithWebIdentity".parse().unwrap(),
            &HeaderMap::new()
        ));
        assert!(!is_sts_request(&Method::GET, &"/".parse().unwrap(), &HeaderMap::new()));
    }

    #[test]
    fn form_parameters_decode() {
        let p = params("Action=AssumeRoleWithWebIdentity&Policy=%7B%22read_only%22%3Atrue%7D&RoleSessionName=a+b");
        assert_eq!(p[1], ("Policy".into(), "{\"read_only\":true}".into()));
        assert_eq!(p[2], ("RoleSessionName".into(), "a b".into()));
    }
}
