//! Buckets, their grants, and projects:
//! `GET|POST /buckets`, `GET|DELETE /buckets/{name}`,
//! `GET|PUT /buckets/{name}/grants`, `DELETE /buckets/{name}/grants/{kind}/{grantee}`,
//! `POST /projects`. Records are answered in their serde form (the same JSON as
//! `coffer admin --json`).

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::{Grantee, Role};
use serde::Deserialize;
use serde_json::json;

use crate::RestState;
use crate::auth::Who;
use crate::problem::Problem;

type Answer = Result<Response, Problem>;

fn body<T>(j: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    j.map(|Json(v)| v).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
}

pub async fn list(State(st): State<RestState>, Who(c): Who) -> Answer {
    Ok(Json(st.gateway.list_buckets(&c).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBucket {
    name: String,
    tier: Option<String>,
}

pub async fn create(State(st): State<RestState>, Who(c): Who, json: Result<Json<NewBucket>, JsonRejection>) -> Answer {
    let req = body(json)?;
    let b = st.gateway.create_bucket(&c, &req.name, req.tier.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

pub async fn get_one(State(st): State<RestState>, Who(c): Who, Path(name): Path<String>) -> Answer {
    Ok(Json(st.gateway.head_bucket(&c, &name).await?).into_response())
}

pub async fn delete(State(st): State<RestState>, Who(c): Who, Path(name): Path<String>) -> Answer {
    st.gateway.delete_bucket(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_grants(State(st): State<RestState>, Who(c): Who, Path(name): Path<String>) -> Answer {
    Ok(Json(st.gateway.list_grants(&c, &name).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    user: Option<String>,
    group: Option<String>,
    role: String,
}

pub async fn put_grant(
    State(st): State<RestState>,
    Who(c): Who,
    Path(name): Path<String>,
    json: Result<Json<NewGrant>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let grantee = match (req.user, req.group) {
        (Some(u), None) => Grantee::User(u),
        (None, Some(g)) => Grantee::Group(g),
        _ => return Err(Problem::new(StatusCode::BAD_REQUEST, "give exactly one of `user` and `group`")),
    };
    let role = Role::parse(&req.role)
        .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "role must be read, write or admin"))?;
    Ok(Json(st.gateway.put_grant(&c, &name, grantee, role).await?).into_response())
}

pub async fn remove_grant(
    State(st): State<RestState>,
    Who(c): Who,
    Path((name, kind, grantee)): Path<(String, String, String)>,
) -> Answer {
    let grantee = match kind.as_str() {
        "user" => Grantee::User(grantee),
        "group" => Grantee::Group(grantee),
        _ => return Err(Problem::new(StatusCode::NOT_FOUND, "grantee kinds are user and group")),
    };
    st.gateway.remove_grant(&c, &name, &grantee).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
}

pub async fn create_project(
    State(st): State<RestState>,
    Who(c): Who,
    json: Result<Json<NewProject>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let b = st.gateway.create_project(&c, &req.name).await?;
    Ok((StatusCode::CREATED, Json(json!({"name": req.name, "bucket": b}))).into_response())
}
