//! Buckets, their grants, and projects:
//! `GET|POST /buckets`, `GET|DELETE /buckets/{name}`,
//! `GET|PUT /buckets/{name}/grants`, `DELETE /buckets/{name}/grants/{kind}/{grantee}`,
//! `POST /projects`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::{Bucket, Grant, Grantee, Role};
use coffer_gateway::{Caller, RequestInfo};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::RestState;
use crate::auth::authenticate;
use crate::problem::Problem;

/// The authenticated caller, as the gateway sees it.
pub(crate) async fn caller(
    st: &RestState,
    remote: SocketAddr,
    headers: &HeaderMap,
    info: Option<&RequestInfo>,
) -> Result<Caller, Problem> {
    let c = authenticate(st, remote.ip(), headers).await?;
    Ok(c.caller(info.map_or("", |i| i.request_id.as_str()), &remote.to_string()))
}

fn body<T>(j: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    j.map(|Json(v)| v).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))
}

pub(crate) fn bucket_json(b: &Bucket) -> Value {
    json!({
        "name": b.name.as_str(),
        "owner": b.owner,
        "tier": b.tier,
        "classification": b.classification.as_str(),
        "created_at": b.created_at,
    })
}

fn grant_json(g: &Grant) -> Value {
    json!({
        "bucket": g.bucket.as_str(),
        "grantee": {"kind": g.grantee.kind(), "name": g.grantee.name()},
        "role": g.role.as_str(),
        "created_at": g.created_at,
    })
}

type Ctx = (State<RestState>, ConnectInfo<SocketAddr>, HeaderMap, Option<axum::Extension<RequestInfo>>);

async fn who(ctx: &Ctx) -> Result<Caller, Problem> {
    let (State(st), ConnectInfo(remote), headers, info) = ctx;
    caller(st, *remote, headers, info.as_ref().map(|e| &e.0)).await
}

fn answer(r: Result<Response, Problem>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

pub async fn list(
    st: State<RestState>,
    remote: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    info: Option<axum::Extension<RequestInfo>>,
) -> Response {
    let ctx = (st, remote, headers, info);
    answer(
        async {
            let c = who(&ctx).await?;
            let buckets = ctx.0.gateway.list_buckets(&c).await?;
            Ok(Json(Value::Array(buckets.iter().map(bucket_json).collect())).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBucket {
    name: String,
    tier: Option<String>,
}

pub async fn create(
    st: State<RestState>,
    remote: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    info: Option<axum::Extension<RequestInfo>>,
    json: Result<Json<NewBucket>, JsonRejection>,
) -> Response {
    let ctx = (st, remote, headers, info);
    answer(
        async {
            let c = who(&ctx).await?;
            let req = body(json)?;
            let b = ctx.0.gateway.create_bucket(&c, &req.name, req.tier.as_deref()).await?;
            Ok((StatusCode::CREATED, Json(bucket_json(&b))).into_response())
        }
        .await,
    )
}

pub async fn get_one(
    st: State<RestState>,
    remote: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    info: Option<axum::Extension<RequestInfo>>,
    Path(name): Path<String>,
) -> Response {
    let ctx = (st, remote, headers, info);
    answer(
        async {
            let c = who(&ctx).await?;
            let b = ctx.0.gateway.head_bucket(&c, &name).await?;
            Ok(Json(bucket_json(&b)).into_response())
        }
        .await,
    )
}

pub async fn delete(
    st: State<RestState>,
    remote: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    info: Option<axum::Extension<RequestInfo>>,
    Path(name): Path<String>,
) -> Response {
    let ctx = (st, remote, headers, info);
    answer(
        async {
            let c = who(&ctx).await?;
            ctx.0.gateway.delete_bucket(&c, &name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

pub async fn list_grants(
    st: State<RestState>,
    remote: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    info: Option<axum::Extension<RequestInfo>>,
    Path(name): Path<String>,
) -> Response {
    let ctx = (st, remote, headers, info);
    answer(
        async {
            let c = who(&ctx).await?;
            let grants = ctx.0.gateway.list_grants(&c, &name).await?;
            Ok(Json(Value::Array(grants.iter().map(grant_json).collect())).into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGrant {
    user: Option<String>,
    group: Option<String>,
    role: String,
}

pub async fn put_grant(
    st: State<RestState>,
    remote: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    info: Option<axum::Extension<RequestInfo>>,
    Path(name): Path<String>,
    json: Result<Json<NewGrant>, JsonRejection>,
) -> Response {
    let ctx = (st, remote, headers, info);
    answer(
        async {
            let c = who(&ctx).await?;
            let req = body(json)?;
            let grantee = match (req.user, req.group) {
                (Some(u), None) => Grantee::User(u),
                (None, Some(g)) => Grantee::Group(g),
                _ => return Err(Problem::new(StatusCode::BAD_REQUEST, "give exactly one of `user` and `group`")),
            };
            let role = Role::parse(&req.role)
                .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "role must be read, write or admin"))?;
            let g = ctx.0.gateway.put_grant(&c, &name, grantee, role).await?;
            Ok(Json(grant_json(&g)).into_response())
        }
        .await,
    )
}

pub async fn remove_grant(
    st: State<RestState>,
    remote: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    info: Option<axum::Extension<RequestInfo>>,
    Path((name, kind, grantee)): Path<(String, String, String)>,
) -> Response {
    let ctx = (st, remote, headers, info);
    answer(
        async {
            let c = who(&ctx).await?;
            let grantee = match kind.as_str() {
                "user" => Grantee::User(grantee),
                "group" => Grantee::Group(grantee),
                _ => return Err(Problem::new(StatusCode::NOT_FOUND, "grantee kinds are user and group")),
            };
            ctx.0.gateway.remove_grant(&c, &name, &grantee).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    name: String,
}

pub async fn create_project(
    st: State<RestState>,
    remote: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    info: Option<axum::Extension<RequestInfo>>,
    json: Result<Json<NewProject>, JsonRejection>,
) -> Response {
    let ctx = (st, remote, headers, info);
    answer(
        async {
            let c = who(&ctx).await?;
            let req = body(json)?;
            let b = ctx.0.gateway.create_project(&c, &req.name).await?;
            Ok((StatusCode::CREATED, Json(json!({"name": req.name, "bucket": bucket_json(&b)}))).into_response())
        }
        .await,
    )
}
