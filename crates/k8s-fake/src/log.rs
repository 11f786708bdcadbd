//! The request log and fault injection.

use serde_json::Value;

/// The API verb of a request, as the API server classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object (or of its `/status`).
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST of a new object.
    Create,
    /// PUT of an object (or of its `/status`).
    Update,
    /// PATCH of any kind, server-side apply included.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
    /// Discovery (`/api`, `/apis`, `/version`...).
    Discovery,
    /// Anything the fake does not serve.
    Other,
}

/// The content type of a PATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (merged as a merge patch by the fake).
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

/// One request the fake received, for assertions on the exact calls a client made.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// HTTP method: `GET`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: String,
    /// The URL path, e.g. `/api/v1/namespaces/default/secrets/a`.
    pub path: String,
    /// The decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body parsed as JSON (a JSON string holding the text when it is not JSON);
    /// `None` for an empty body.
    pub body: Option<Value>,
    /// The API verb.
    pub verb: Verb,
    /// The API group (`""` for core) of a resource request.
    pub group: String,
    /// The resource (plural) of a resource request.
    pub resource: Option<String>,
    /// The namespace in the path.
    pub namespace: Option<String>,
    /// The object name in the path.
    pub name: Option<String>,
    /// The subresource in the path (`status`).
    pub subresource: Option<String>,
    /// The HTTP status the fake answered (for a watch: the status of the stream's start).
    pub status: u16,
}

impl RequestRecord {
    /// The first value of a query parameter.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The `fieldManager` query parameter.
    pub fn field_manager(&self) -> Option<&str> {
        self.query_param("fieldManager")
    }

    /// Whether `force=true` was given (server-side apply).
    pub fn force(&self) -> bool {
        self.query_param("force") == Some("true")
    }

    /// The kind of a PATCH, from its content type.
    pub fn patch_type(&self) -> Option<PatchType> {
        match self.content_type.as_deref()?.split(';').next()?.trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }

    /// Whether this is a server-side apply.
    pub fn is_apply(&self) -> bool {
        self.verb == Verb::Patch && self.patch_type() == Some(PatchType::Apply)
    }
}

/// A fault to inject: the next `times` requests that match answer `code` with a `Status`
/// instead of being served (they are still logged, with that code).
///
/// ```
/// use coffer_k8s_fake::{Fault, Verb};
/// // The next two PATCHes of any profile fail with 500.
/// let fault = Fault::new(Verb::Patch, "profiles", 500).times(2);
/// # let _ = fault;
/// ```
///
/// kube's client retries 429, 503 and 504 answers by itself (up to 15 times, with
/// backoff) before the caller sees them; use another code (500, 409...) to exercise a
/// controller's own error handling.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// The verb to fail.
    pub verb: Verb,
    /// The resource (plural) to fail, e.g. `secrets`.
    pub resource: String,
    /// Only requests for this object name, if set.
    pub name: Option<String>,
    /// Only requests in this namespace, if set.
    pub namespace: Option<String>,
    /// Only requests for this subresource (`Some("status")`); `None` matches any.
    pub subresource: Option<String>,
    /// How many requests to fail.
    pub remaining: usize,
    /// The HTTP status code.
    pub code: u16,
    /// The `reason` of the `Status` (defaults to the API server's reason for the code).
    pub reason: Option<String>,
    /// The `message` of the `Status`.
    pub message: String,
}

impl Fault {
    /// Fails the next request of `verb` on `resource` with `code`.
    pub fn new(verb: Verb, resource: &str, code: u16) -> Self {
        Self {
            verb,
            resource: resource.to_owned(),
            name: None,
            namespace: None,
            subresource: None,
            remaining: 1,
            code,
            reason: None,
            message: format!("injected fault: {verb:?} {resource} fails with {code}"),
        }
    }

    /// Fails `n` requests instead of one.
    #[must_use]
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = n;
        self
    }

    /// Fails only requests for the object `name`.
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Fails only requests in `namespace`.
    #[must_use]
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Fails only requests for `subresource` (e.g. `status`).
    #[must_use]
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(subresource.to_owned());
        self
    }

    /// Sets the `reason` of the answered `Status`.
    #[must_use]
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    /// Sets the `message` of the answered `Status`.
    #[must_use]
    pub fn message(mut self, message: &str) -> Self {
        self.message = message.to_owned();
        self
    }

    pub(crate) fn matches(&self, r: &RequestRecord) -> bool {
        self.remaining > 0
            && self.verb == r.verb
            && r.resource.as_deref() == Some(self.resource.as_str())
            && self.name.as_ref().is_none_or(|n| r.name.as_ref() == Some(n))
            && self.namespace.as_ref().is_none_or(|n| r.namespace.as_ref() == Some(n))
            && self.subresource.as_ref().is_none_or(|s| r.subresource.as_ref() == Some(s))
    }
}
