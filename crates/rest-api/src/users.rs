//! Users, for the platform admin: `GET /users` — every user record with their quota and
//! usage (what a console shows as a table with usage bars). Setting a user's quota is
//! `PUT /users/{name}/quota` ([`crate::quotas`]).

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;

use crate::RestState;
use crate::auth::Who;
use crate::buckets::Answer;
use crate::views::UserView;

/// Every user record with groups, clearance, quota and usage (the platform admin).
#[utoipa::path(get, operation_id = "list_users", path = "/users", tag = "users",
    responses((status = 200, body = Vec<UserView>)))]
pub async fn list(State(st): State<RestState>, Who(c, _): Who) -> Answer {
    let users = st.gateway.list_users(&c).await?;
    let views: Vec<UserView> = users
        .into_iter()
        .map(|r| UserView {
            max_bytes: r.quota.as_ref().and_then(|q| q.max_bytes),
            max_objects: r.quota.as_ref().and_then(|q| q.max_objects),
            bytes: r.usage.bytes,
            objects: r.usage.objects,
            untracked_buckets: r.untracked_buckets,
            user: r.user,
        })
        .collect();
    Ok(Json(views).into_response())
}
