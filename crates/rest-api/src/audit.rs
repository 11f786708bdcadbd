//! The audit trail: `GET /audit?user&bucket&decision&since&until&limit`, newest first.
//! The platform admin sees every decision; a bucket's admins see their bucket's.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use coffer_core::AuditFilter;

use crate::RestState;
use crate::auth::Who;
use crate::buckets::Answer;
use crate::problem::Problem;
use crate::views::{AuditEventView, AuditPage, AuditParams, Decision, rfc3339_millis};

/// The most events in one page.
pub const MAX_EVENTS: u32 = 1000;
const DEFAULT_EVENTS: u32 = 100;

/// Unix milliseconds from RFC 3339.
fn millis(field: &str, v: &str) -> Result<i64, Problem> {
    let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).map_err(|_| {
        Problem::bad_request(format!("`{field}` must be an RFC 3339 time such as 2026-01-31T12:00:00Z"))
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| Problem::bad_request(format!("`{field}` is out of range")))
}

/// Authorization decisions, newest first (the platform admin: all; a bucket's admins: that
/// bucket's, which `bucket` must name).
#[utoipa::path(get, operation_id = "list_audit_events", path = "/audit", tag = "audit", params(AuditParams), responses((status = 200, body = AuditPage)))]
pub async fn list(
    State(st): State<RestState>,
    Who(c, _): Who,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Answer {
    let Query(p) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let limit = p.limit.unwrap_or(DEFAULT_EVENTS).clamp(1, MAX_EVENTS);
    let filter = AuditFilter {
        principal: p.user,
        bucket: p.bucket,
        allowed: p.decision.map(|d| matches!(d, Decision::Allow)),
        since: p.since.as_deref().map(|v| millis("since", v)).transpose()?,
        until: p.until.as_deref().map(|v| millis("until", v)).transpose()?,
        limit: limit as usize,
    };
    let events = st.gateway.audit_events_for(&c, &filter).await?;
    // A full page may have more behind it: continue before its oldest event's millisecond
    // (the gateway completed the page with every event of that millisecond).
    let next_until = (events.len() >= limit as usize).then(|| events.last().map(|e| rfc3339_millis(e.at))).flatten();
    let events = events.into_iter().map(|event| AuditEventView { time: rfc3339_millis(event.at), event }).collect();
    Ok(Json(AuditPage { events, next_until }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_both_ways() {
        assert_eq!(millis("since", "2026-01-31T12:00:00Z").unwrap(), 1_769_860_800_000);
        assert_eq!(millis("since", "2026-01-31T13:00:00.250+01:00").unwrap(), 1_769_860_800_250);
        assert_eq!(rfc3339_millis(1_769_860_800_250), "2026-01-31T12:00:00.250Z");
        assert!(millis("since", "yesterday").is_err());
        assert!(millis("since", "1769860800").is_err());
    }
}
