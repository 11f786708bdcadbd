//! Who is calling the REST API: an OIDC bearer token if one is sent, otherwise the
//! identity headers of a trusted sidecar, otherwise nobody (401).

use std::net::IpAddr;

use axum::http::{HeaderMap, header};
use coffer_core::Principal;
use coffer_identity::HeaderOutcome;

use crate::RestState;
use crate::problem::Problem;

/// An authenticated REST caller.
#[derive(Debug, Clone)]
pub struct RestCaller {
    pub principal: Principal,
    /// `bearer` or `headers`.
    pub via: &'static str,
}

impl RestCaller {
    /// The gateway's view of this caller, attributed to a request.
    pub fn caller(&self, request_id: &str, source: &str) -> coffer_gateway::Caller {
        coffer_gateway::Caller {
            principal: self.principal.clone(),
            narrowing: coffer_core::Narrowing::default(),
            access_key_id: self.via.to_owned(),
            request_id: request_id.to_owned(),
            source: source.to_owned(),
        }
    }
}

/// The authenticated caller of a REST handler, as the gateway sees it; refuses with a
/// 401 problem.
pub struct Who(pub coffer_gateway::Caller);

impl axum::extract::FromRequestParts<RestState> for Who {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &RestState,
    ) -> Result<Self, Self::Rejection> {
        let remote = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0)
            .ok_or_else(|| Problem::unauthorized("the client address is unknown"))?;
        let request_id =
            parts.extensions.get::<coffer_gateway::RequestInfo>().map(|i| i.request_id.clone()).unwrap_or_default();
        let c = authenticate(st, remote.ip(), &parts.headers).await?;
        Ok(Who(c.caller(&request_id, &remote.to_string())))
    }
}

pub async fn authenticate(st: &RestState, remote: IpAddr, headers: &HeaderMap) -> Result<RestCaller, Problem> {
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) else {
            return Err(Problem::unauthorized("use Authorization: Bearer <token>"));
        };
        return match st.gateway.principal_for_bearer(token).await {
            None => Err(Problem::unauthorized("no token issuer is configured")),
            Some(Ok(principal)) => Ok(RestCaller { principal, via: "bearer" }),
            Some(Err(e)) => {
                tracing::info!(%remote, error = %e, "bearer token refused");
                Err(Problem::unauthorized(format!("the bearer token was refused: {e}")))
            }
        };
    }
    if let Some(rule) = &st.headers {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match rule.identify(remote, get) {
            HeaderOutcome::Trusted(id) => {
                return match st.gateway.principal_for_headers(&id) {
                    Some(principal) => Ok(RestCaller { principal, via: "headers" }),
                    None => Err(Problem::unauthorized("that user name is reserved")),
                };
            }
            // Logged by `identify`; treated as if there were no such headers.
            HeaderOutcome::Untrusted | HeaderOutcome::Absent => {}
        }
    }
    Err(Problem::unauthorized("sign in: send a bearer token, or come through the auth proxy"))
}
