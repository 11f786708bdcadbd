//! Projects and their members:
//! `GET|POST /projects`, `GET|DELETE /projects/{name}`,
//! `GET|PUT /projects/{name}/members`, `DELETE /projects/{name}/members/{kind}/{member}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use coffer_core::Grant;

use crate::RestState;
use crate::auth::Who;
use crate::buckets::{Answer, body, grantee, grantee_of};
use crate::views::{NewGrant, NewProject, ProjectView};

/// The projects you are a member of.
#[utoipa::path(get, operation_id = "list_projects", path = "/projects", tag = "projects", responses((status = 200, body = Vec<ProjectView>)))]
pub async fn list(State(st): State<RestState>, Who(c, _): Who) -> Answer {
    let all: Vec<ProjectView> = st.gateway.list_projects(&c).await?.into_iter().map(Into::into).collect();
    Ok(Json(all).into_response())
}

/// Create a project: its bucket, owned by `project:<name>`, with you as its admin.
#[utoipa::path(post, operation_id = "create_project", path = "/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = ProjectView)))]
pub async fn create(
    State(st): State<RestState>,
    Who(c, _): Who,
    json: Result<Json<NewProject>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let p = st.gateway.create_project(&c, &req.name).await?;
    Ok((StatusCode::CREATED, Json(ProjectView::from(p))).into_response())
}

/// One project (its members).
#[utoipa::path(get, operation_id = "get_project", path = "/projects/{name}", tag = "projects", params(("name" = String, Path)),
    responses((status = 200, body = ProjectView)))]
pub async fn get_one(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    Ok(Json(ProjectView::from(st.gateway.get_project(&c, &name).await?)).into_response())
}

/// Delete a project and its buckets, which must be empty (its admins).
#[utoipa::path(delete, operation_id = "delete_project", path = "/projects/{name}", tag = "projects", params(("name" = String, Path)),
    responses((status = 204, description = "deleted")))]
pub async fn delete(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    st.gateway.delete_project(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The members: users and groups with their roles (its members).
#[utoipa::path(get, operation_id = "list_members", path = "/projects/{name}/members", tag = "projects", params(("name" = String, Path)),
    responses((status = 200, body = Vec<Grant>)))]
pub async fn list_members(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    Ok(Json(st.gateway.list_members(&c, &name).await?).into_response())
}

/// Add a member or change a member's role (its admins). A project keeps at least one admin.
#[utoipa::path(put, operation_id = "put_member", path = "/projects/{name}/members", tag = "projects", params(("name" = String, Path)),
    request_body = NewGrant, responses((status = 200, body = Grant)))]
pub async fn put_member(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(name): Path<String>,
    json: Result<Json<NewGrant>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let member = grantee(req.user, req.group)?;
    Ok(Json(st.gateway.put_member(&c, &name, member, req.role).await?).into_response())
}

/// Remove a member (its admins). The last admin cannot be removed.
#[utoipa::path(delete, operation_id = "remove_member", path = "/projects/{name}/members/{kind}/{member}", tag = "projects",
    params(("name" = String, Path), ("kind" = String, Path, description = "`user` or `group`"), ("member" = String, Path)),
    responses((status = 204, description = "removed")))]
pub async fn remove_member(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((name, kind, member)): Path<(String, String, String)>,
) -> Answer {
    let member = grantee_of(&kind, member)?;
    st.gateway.remove_member(&c, &name, &member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
