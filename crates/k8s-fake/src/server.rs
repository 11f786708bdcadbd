//! The HTTP side: routing of API paths, the request log, fault injection, discovery, and
//! watch streams.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use crate::error::{ApiError, reason_for_code};
use crate::log::{Fault, RequestRecord, Verb};
use crate::resources::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::store::{Change, ChangeKind, PatchKind, Store, WatchStart, WriteOptions, present};

/// State shared by the handle and the server.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub faults: Mutex<Vec<Fault>>,
    /// Bumped to end every open watch with 410 Gone.
    pub expiry: watch::Sender<u64>,
    pub shutdown: watch::Sender<bool>,
    pub max_watch_timeout: Option<Duration>,
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge the fake).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn json_response(code: u16, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(err: &ApiError) -> Response {
    json_response(err.code, &err.to_status())
}

/// What a path addresses.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    Api,
    CoreVersion(String),
    Apis,
    Group(String),
    GroupVersion(String, String),
    Version,
    Resource {
        group: String,
        version: String,
        resource: String,
        namespace: Option<String>,
        name: Option<String>,
        subresource: Option<String>,
    },
    Unknown,
}

fn decode_segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn parse_path(path: &str) -> Target {
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(decode_segment).collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, version, rest) = match s.as_slice() {
        ["api"] => return Target::Api,
        ["api", v] => return Target::CoreVersion((*v).to_owned()),
        ["apis"] => return Target::Apis,
        ["apis", g] => return Target::Group((*g).to_owned()),
        ["apis", g, v] => return Target::GroupVersion((*g).to_owned(), (*v).to_owned()),
        ["version"] => return Target::Version,
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Target::Unknown,
    };
    let own = |x: &&str| (*x).to_owned();
    let resource =
        |resource: &str, namespace: Option<&str>, name: Option<&&str>, sub: Option<&&str>| Target::Resource {
            group: group.to_owned(),
            version: version.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(own),
            subresource: sub.map(own),
        };
    match rest {
        // The namespace object itself and its subresources.
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            resource("namespaces", None, Some(ns), Some(sub))
        }
        ["namespaces", ns, res, tail @ ..] if tail.len() <= 2 => resource(res, Some(ns), tail.first(), tail.get(1)),
        [res, tail @ ..] if tail.len() <= 2 => resource(res, None, tail.first(), tail.get(1)),
        _ => Target::Unknown,
    }
}

fn classify(method: &Method, target: &Target, query: &[(String, String)]) -> Verb {
    let Target::Resource { name, .. } = target else {
        return match target {
            Target::Unknown => Verb::Other,
            _ => Verb::Discovery,
        };
    };
    let watch = query.iter().any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    match (method.as_str(), name.is_some()) {
        ("GET", true) => Verb::Get,
        ("GET", false) if watch => Verb::Watch,
        ("GET", false) => Verb::List,
        ("POST", false) => Verb::Create,
        ("PUT", true) => Verb::Update,
        ("PATCH", true) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => Verb::Other,
    }
}

fn take_fault(shared: &Shared, record: &RequestRecord) -> Option<ApiError> {
    let mut faults = lock(&shared.faults);
    let fault = faults.iter_mut().find(|f| f.matches(record))?;
    fault.remaining -= 1;
    let err = ApiError::new(
        fault.code,
        fault.reason.as_deref().unwrap_or(reason_for_code(fault.code)),
        fault.message.clone(),
    );
    faults.retain(|f| f.remaining > 0);
    Some(err)
}

/// The single handler of every request.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let metadata_only = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
    let body = if bytes.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        )
    };
    let target = parse_path(&path);
    let verb = classify(&parts.method, &target, &query);
    let (group, resource, namespace, name, subresource) = match &target {
        Target::Resource { group, resource, namespace, name, subresource, .. } => {
            (group.clone(), Some(resource.clone()), namespace.clone(), name.clone(), subresource.clone())
        }
        _ => (String::new(), None, None, None, None),
    };
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        path,
        query,
        content_type,
        body,
        verb,
        group,
        resource,
        namespace,
        name,
        subresource,
        status: 0,
    };
    let response = match take_fault(&shared, &record) {
        Some(err) => error_response(&err),
        None => match dispatch(&shared, &parts.method, &target, &record, &user_agent, metadata_only) {
            Ok(resp) => resp,
            Err(err) => error_response(&err),
        },
    };
    record.status = response.status().as_u16();
    tracing::debug!(method = %record.method, path = %record.path, status = record.status, "fake kube-apiserver");
    lock(&shared.log).push(record);
    response
}

fn param<'a>(r: &'a RequestRecord, key: &str) -> Option<&'a str> {
    r.query_param(key)
}

fn selectors(r: &RequestRecord) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(param(r, "labelSelector").unwrap_or_default()).map_err(ApiError::bad_request)?,
        fields: FieldSelector::parse(param(r, "fieldSelector").unwrap_or_default()).map_err(ApiError::bad_request)?,
    })
}

fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    target: &Target,
    r: &RequestRecord,
    user_agent: &str,
    metadata_only: bool,
) -> Result<Response, ApiError> {
    let Target::Resource { group, version, resource, namespace, name, subresource } = target else {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
        let store = lock(&shared.store);
        return discovery(&store, target).map(|v| json_response(200, &v));
    };
    let info = lock(&shared.store).resources.by_plural(group, version, resource).ok_or_else(ApiError::no_route)?;
    let ns = namespace.as_deref();
    let name = name.as_deref();
    let sub = subresource.as_deref();
    if (ns.is_some() && !info.namespaced) || (name.is_some() && info.namespaced && ns.is_none()) {
        return Err(ApiError::no_route());
    }
    if let Some(sub) = sub
        && !(sub == "status" && info.status_subresource)
    {
        return Err(ApiError::no_route());
    }
    let opts = WriteOptions {
        dry_run: param(r, "dryRun") == Some("All"),
        field_manager: param(r, "fieldManager").map(str::to_owned),
        default_manager: match user_agent.split('/').next().unwrap_or_default() {
            "" => "unknown".to_owned(),
            prefix => prefix.to_owned(),
        },
        force: param(r, "force") == Some("true"),
    };
    let body = || r.body.clone().ok_or_else(|| ApiError::bad_request("the request has no body"));
    let shape = |v: Value| if metadata_only { partial_metadata(v) } else { v };
    let respond = |result: Result<(u16, Value), ApiError>| result.map(|(code, v)| json_response(code, &shape(v)));
    match (r.verb, name) {
        (Verb::Get, Some(name)) => respond(lock(&shared.store).get(&info, ns, name).map(|v| (200, v))),
        (Verb::List, None) => respond(Ok((200, lock(&shared.store).list(&info, ns, &selectors(r)?)))),
        (Verb::Watch, None) => start_watch(shared, &info, ns, r, metadata_only),
        (Verb::Create, None) if sub.is_none() => {
            if info.namespaced && ns.is_none() {
                return Err(ApiError::method_not_allowed());
            }
            respond(lock(&shared.store).create(&info, ns, body()?, &opts))
        }
        (Verb::Update, Some(name)) => respond(lock(&shared.store).replace(&info, ns, name, sub, body()?, &opts)),
        (Verb::Patch, Some(name)) => {
            let ct = r.content_type.as_deref().unwrap_or_default();
            let ct = ct.split(';').next().unwrap_or_default().trim();
            let kind = PatchKind::from_content_type(ct).ok_or_else(|| ApiError::unsupported_media_type(ct))?;
            let body = match body()? {
                Value::String(text) => {
                    return Err(ApiError::bad_request(format!(
                        "the fake accepts JSON bodies only; could not parse: {}",
                        text.chars().take(80).collect::<String>()
                    )));
                }
                other => other,
            };
            respond(lock(&shared.store).patch(&info, ns, name, sub, kind, body, &opts))
        }
        (Verb::Delete, Some(name)) if sub.is_none() => {
            let options = r.body.clone().unwrap_or(Value::Null);
            respond(lock(&shared.store).delete(&info, ns, name, &options, opts.dry_run))
        }
        (Verb::DeleteCollection, None) => {
            respond(lock(&shared.store).delete_collection(&info, ns, &selectors(r)?, opts.dry_run))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The `meta.k8s.io/v1` `PartialObjectMetadata` form of an object or list, answered when
/// the client asks for it in `Accept` (kube's `get_metadata`, `list_metadata`,
/// `metadata_watcher`...).
fn partial_metadata(v: Value) -> Value {
    let partial = |o: &Value| {
        json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": o.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })
    };
    match v.get("kind").and_then(Value::as_str) {
        Some("Status") => v,
        _ => match v.get("items").and_then(Value::as_array) {
            Some(items) => json!({
                "apiVersion": "meta.k8s.io/v1",
                "kind": "PartialObjectMetadataList",
                "metadata": v.get("metadata").cloned().unwrap_or_else(|| json!({})),
                "items": items.iter().map(partial).collect::<Vec<_>>(),
            }),
            None => partial(&v),
        },
    }
}

fn api_resources(store: &Store, group: &str, version: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for info in store.resources.all().iter().filter(|r| r.group == group && r.version == version) {
        out.push(json!({
            "name": info.plural,
            "singularName": info.kind.to_lowercase(),
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        }));
        if info.status_subresource {
            out.push(json!({
                "name": format!("{}/status", info.plural),
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    out
}

fn group_json(store: &Store, group: &str) -> Option<Value> {
    let mut versions: Vec<String> =
        store.resources.all().iter().filter(|r| r.group == group).map(|r| r.version.clone()).collect();
    versions.dedup();
    let first = versions.first()?.clone();
    let gv = |v: &str| json!({ "groupVersion": format!("{group}/{v}"), "version": v });
    Some(json!({
        "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(&first),
    }))
}

/// Legacy (non-aggregated) discovery documents.
fn discovery(store: &Store, target: &Target) -> Result<Value, ApiError> {
    let resource_list = |group: &str, version: &str| {
        let resources = api_resources(store, group, version);
        if resources.is_empty() {
            return Err(ApiError::no_route());
        }
        let gv = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
        Ok(json!({ "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources }))
    };
    match target {
        Target::Api => Ok(json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [] })),
        Target::CoreVersion(v) => resource_list("", v),
        Target::Apis => {
            let mut groups: Vec<String> =
                store.resources.all().iter().filter(|r| !r.group.is_empty()).map(|r| r.group.clone()).collect();
            groups.sort();
            groups.dedup();
            let groups: Vec<Value> = groups.iter().filter_map(|g| group_json(store, g)).collect();
            Ok(json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups }))
        }
        Target::Group(g) => group_json(store, g)
            .map(|mut v| {
                v["kind"] = json!("APIGroup");
                v["apiVersion"] = json!("v1");
                v
            })
            .ok_or_else(ApiError::no_route),
        Target::GroupVersion(g, v) => resource_list(g, v),
        Target::Version => Ok(json!({
            "major": "1",
            "minor": "33",
            "gitVersion": "v1.33.0-coffer-k8s-fake",
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        })),
        _ => Err(ApiError::no_route()),
    }
}

/// What a watch sends: changes of one resource, in one namespace or all, through the
/// selectors. A change that makes an object start (stop) matching the selectors is sent
/// as ADDED (DELETED), as the real server does.
struct WatchFilter {
    info: Arc<ResourceInfo>,
    namespace: Option<String>,
    selectors: Selectors,
    metadata_only: bool,
}

impl WatchFilter {
    fn line(&self, change: &Change) -> Option<String> {
        if change.group != self.info.group || change.plural != self.info.plural {
            return None;
        }
        if self.namespace.as_ref().is_some_and(|ns| *ns != change.namespace) {
            return None;
        }
        let now = self.selectors.matches(&change.object);
        let before = change.previous.as_ref().is_some_and(|p| self.selectors.matches(p));
        let kind = match change.kind {
            ChangeKind::Added => now.then_some("ADDED")?,
            ChangeKind::Modified => match (before, now) {
                (true, true) => "MODIFIED",
                (false, true) => "ADDED",
                (true, false) => "DELETED",
                (false, false) => return None,
            },
            ChangeKind::Deleted => (now || before).then_some("DELETED")?,
        };
        let object = present(&self.info, &change.object);
        let object = if self.metadata_only { partial_metadata(object) } else { object };
        Some(event_line(kind, &object))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> String {
        let mut meta = json!({ "resourceVersion": rv.to_string() });
        if initial_end {
            meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        event_line(
            "BOOKMARK",
            &json!({ "apiVersion": self.info.api_version(), "kind": self.info.kind, "metadata": meta }),
        )
    }
}

fn event_line(kind: &str, object: &Value) -> String {
    let mut line = json!({ "type": kind, "object": object }).to_string();
    line.push('\n');
    line
}

struct WatchOptions {
    bookmarks: bool,
    send_initial_events: bool,
    timeout: Option<Duration>,
}

fn start_watch(
    shared: &Arc<Shared>,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    r: &RequestRecord,
    metadata_only: bool,
) -> Result<Response, ApiError> {
    let filter = WatchFilter {
        info: info.clone(),
        namespace: namespace.map(str::to_owned),
        selectors: selectors(r)?,
        metadata_only,
    };
    let from = match param(r, "resourceVersion").unwrap_or_default() {
        "" | "0" => None,
        rv => Some(rv.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?),
    };
    let mut timeout = param(r, "timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_secs);
    if let Some(max) = shared.max_watch_timeout {
        timeout = Some(timeout.map_or(max, |t| t.min(max)));
    }
    let options = WatchOptions {
        bookmarks: param(r, "allowWatchBookmarks") == Some("true"),
        send_initial_events: param(r, "sendInitialEvents") == Some("true"),
        timeout,
    };
    let (tx, rx) = mpsc::channel::<Result<String, Infallible>>(256);
    // Subscribe to expiry and shutdown before reading the store, so that neither is missed.
    let expiry = shared.expiry.subscribe();
    let shutdown = shared.shutdown.subscribe();
    let start = lock(&shared.store).watch(info, namespace, from);
    match start {
        Ok(start) => {
            tokio::spawn(run_watch(tx, filter, start, options, shutdown, expiry));
        }
        // As the API server's watch cache does: a too old version is an ERROR event in an
        // otherwise successful stream.
        Err(err) => {
            let _ = tx.try_send(Ok(event_line("ERROR", &err.to_status())));
        }
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

async fn run_watch(
    tx: mpsc::Sender<Result<String, Infallible>>,
    filter: WatchFilter,
    mut start: WatchStart,
    options: WatchOptions,
    mut shutdown: watch::Receiver<bool>,
    mut expiry: watch::Receiver<u64>,
) {
    let mut last_rv = start.start_rv;
    for change in &start.initial {
        if let Some(line) = filter.line(change)
            && tx.send(Ok(line)).await.is_err()
        {
            return;
        }
    }
    if options.send_initial_events && tx.send(Ok(filter.bookmark(last_rv, true))).await.is_err() {
        return;
    }
    let deadline = options.timeout.map(|t| tokio::time::Instant::now() + t);
    let sleep = async move {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => {
                if options.bookmarks {
                    let _ = tx.send(Ok(filter.bookmark(last_rv, false))).await;
                }
                return;
            }
            _ = shutdown.changed() => return,
            _ = expiry.changed() => {
                let err = ApiError::expired(last_rv, last_rv);
                let _ = tx.send(Ok(event_line("ERROR", &err.to_status()))).await;
                return;
            }
            () = tx.closed() => return,
            msg = start.rx.recv() => match msg {
                Ok(change) => {
                    last_rv = last_rv.max(change.rv);
                    if let Some(line) = filter.line(&change)
                        && tx.send(Ok(line)).await.is_err()
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let err = ApiError::expired(last_rv, last_rv);
                    let _ = tx.send(Ok(event_line("ERROR", &err.to_status()))).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, resource: &str, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>) -> Target {
        Target::Resource {
            group: group.into(),
            version: "v1".into(),
            resource: resource.into(),
            namespace: namespace.map(Into::into),
            name: name.map(Into::into),
            subresource: sub.map(Into::into),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse_path("/api"), Target::Api);
        assert_eq!(parse_path("/apis/kubeflow.org/v1"), Target::GroupVersion("kubeflow.org".into(), "v1".into()));
        assert_eq!(parse_path("/api/v1/namespaces"), res("", "namespaces", None, None, None));
        assert_eq!(parse_path("/api/v1/namespaces/a"), res("", "namespaces", None, Some("a"), None));
        assert_eq!(parse_path("/api/v1/namespaces/a/status"), res("", "namespaces", None, Some("a"), Some("status")));
        assert_eq!(parse_path("/api/v1/namespaces/a/secrets"), res("", "secrets", Some("a"), None, None));
        assert_eq!(parse_path("/api/v1/namespaces/a/secrets/s"), res("", "secrets", Some("a"), Some("s"), None));
        assert_eq!(
            parse_path("/api/v1/namespaces/a/pods/p/status"),
            res("", "pods", Some("a"), Some("p"), Some("status"))
        );
        assert_eq!(parse_path("/api/v1/secrets"), res("", "secrets", None, None, None));
        assert_eq!(
            parse_path("/apis/kubeflow.org/v1/profiles/p/status"),
            res("kubeflow.org", "profiles", None, Some("p"), Some("status"))
        );
        assert_eq!(
            parse_path("/apis/events.k8s.io/v1/namespaces/d/events"),
            res("events.k8s.io", "events", Some("d"), None, None)
        );
        assert_eq!(parse_path("/api/v1/a/b/c/d"), Target::Unknown);
        assert_eq!(parse_path("/healthz"), Target::Unknown);
    }
}
