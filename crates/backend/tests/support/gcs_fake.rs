//! An in-process fake of the part of Google Cloud Storage's XML API that `object_store`
//! (and coffer's raw completion request) use, for the GCS conformance tests.
//!
//! Why a fake: the PyPI `gcp-storage-emulator` serves the JSON API and only simple XML
//! uploads and downloads; it has no XML listing (`list-type=2`), no XML multipart upload
//! (`?uploads`, `?partNumber`, `?uploadId`), no `x-goog-copy-source` copies and no
//! `x-goog-meta-*` metadata, which is everything `object_store`'s GCS client speaks.
//!
//! What it implements, following Google's XML API documentation:
//! - bearer authentication: the token must be an RS256 JWT signed by an allowed service
//!   account key (`kid`), issued by the account's email, not expired — so coffer's own JWT
//!   signing is checked for real, and a key can be revoked to test rotation;
//! - objects: PUT (ETag = the MD5 in hex), GET and HEAD with ranges (206, 416),
//!   DELETE, copy by `x-goog-copy-source` (metadata kept); `Content-*`, `Cache-Control`
//!   and `x-goog-meta-*` stored and returned; `x-goog-generation`;
//! - listings: `GET /bucket?list-type=2` with prefix, delimiter, start-after, max-keys and
//!   continuation tokens, in byte order, Contents before CommonPrefixes;
//! - multipart: initiate (`POST ?uploads`, metadata taken there), parts (`PUT
//!   ?partNumber&uploadId`, ETag = MD5), complete (`POST ?uploadId`: ascending part
//!   numbers, a subset allowed, every part but the last at least 5 MiB, ETags must match;
//!   the object gets an opaque, non-MD5 ETag as GCS documents for multipart objects),
//!   abort (`DELETE ?uploadId`);
//! - errors as `<Error><Code>…</Code><Message>…</Message></Error>` with GCS's statuses.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use md5::{Digest, Md5};
use ring::signature;

/// The smallest part but the last, as GCS requires.
const MIN_PART: usize = 5 * 1024 * 1024;

#[derive(Clone)]
struct Object {
    data: Bytes,
    etag: String,
    headers: Vec<(String, String)>,
    generation: u64,
    updated: SystemTime,
}

struct Upload {
    bucket: String,
    name: String,
    headers: Vec<(String, String)>,
    parts: BTreeMap<u32, (Bytes, String)>,
}

#[derive(Default)]
struct State {
    buckets: HashMap<String, BTreeMap<String, Object>>,
    uploads: HashMap<String, Upload>,
    /// Allowed signing keys: `kid` → public key (DER, RSAPublicKey).
    keys: HashMap<String, Vec<u8>>,
    email: String,
    generation: u64,
}

/// A running fake, shared by the tests of this process.
#[derive(Clone)]
pub struct GcsFake {
    pub url: String,
    state: Arc<Mutex<State>>,
}

static FAKE: OnceLock<GcsFake> = OnceLock::new();

/// The public key (RSAPublicKey DER) of a PEM private key.
pub fn public_key(pem: &str) -> Vec<u8> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap() else { panic!("PKCS#8") };
    let pair = signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
    pair.public().as_ref().to_vec()
}

impl GcsFake {
    /// The fake of this process, started on first use on its own runtime and thread.
    pub fn shared() -> GcsFake {
        FAKE.get_or_init(|| {
            let state = Arc::new(Mutex::new(State::default()));
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let served = Arc::clone(&state);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
                rt.block_on(async move { serve(tokio::net::TcpListener::from_std(listener).unwrap(), served).await });
            });
            GcsFake { url: format!("http://{addr}"), state }
        })
        .clone()
    }

    pub fn set_account(&self, email: &str) {
        self.state.lock().unwrap().email = email.to_owned();
    }

    pub fn allow_key(&self, kid: &str, pem: &str) {
        self.state.lock().unwrap().keys.insert(kid.to_owned(), public_key(pem));
    }

    pub fn revoke_key(&self, kid: &str) {
        self.state.lock().unwrap().keys.remove(kid);
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.state.lock().unwrap().buckets.entry(bucket.to_owned()).or_default();
    }

    /// Multipart uploads begun and neither completed nor aborted, in a bucket.
    pub fn pending_uploads(&self, bucket: &str) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.uploads.values().filter(|u| u.bucket == bucket).map(|u| u.name.clone()).collect()
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<Mutex<State>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(req, state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

type Reply = Response<Full<Bytes>>;

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{}</Message></Error>",
        xml_escape(message)
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn xml(body: String) -> Reply {
    Response::builder()
        .status(200)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn http_date(t: SystemTime) -> String {
    httpdate(t)
}

/// RFC 7231 IMF-fixdate.
fn httpdate(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let (y, mo, d) = civil(days as i64);
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(mo - 1) as usize];
    format!("{weekday}, {d:02} {month} {y} {h:02}:{m:02}:{s:02} GMT")
}

fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap();
    let secs = d.as_secs();
    let (y, mo, day) = civil((secs / 86_400) as i64);
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    format!("{y:04}-{mo:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z", d.subsec_millis())
}

/// Days since the epoch → (year, month, day) (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()).into_owned().collect()
}

/// The headers stored with an object.
fn stored_headers(req: &Request<Incoming>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in req.headers() {
        let k = k.as_str();
        let keep = k.starts_with("x-goog-meta-")
            || matches!(
                k,
                "content-type" | "content-encoding" | "content-disposition" | "content-language" | "cache-control"
            );
        if keep && let Ok(v) = v.to_str() {
            out.push((k.to_owned(), v.to_owned()));
        }
    }
    if !out.iter().any(|(k, _)| k == "content-type") {
        out.push(("content-type".to_owned(), "application/octet-stream".to_owned()));
    }
    out
}

fn authorized(req: &Request<Incoming>, st: &State) -> Result<(), String> {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok()).ok_or("no Authorization header")?;
    let token = header.strip_prefix("Bearer ").ok_or("not a bearer token")?;
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| "bad JWT header")?)
        .map_err(|_| "bad JWT header")?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).map_err(|_| "bad JWT claims")?)
        .map_err(|_| "bad JWT claims")?;
    if header["alg"] != "RS256" {
        return Err("not RS256".into());
    }
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let key = st.keys.get(kid).ok_or_else(|| format!("unknown or revoked key {kid}"))?;
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| "bad signature encoding")?;
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "bad signature")?;
    if claims["iss"] != st.email.as_str() {
        return Err("wrong issuer".into());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    if claims["exp"].as_u64().is_none_or(|exp| exp <= now) {
        return Err("expired".into());
    }
    Ok(())
}

async fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Reply {
    {
        let st = state.lock().unwrap();
        if let Err(why) = authorized(&req, &st) {
            return error(StatusCode::UNAUTHORIZED, "AuthenticationRequired", &why);
        }
    }
    // `/bucket` or `/bucket/<percent-encoded object name>`.
    let path = req.uri().path().trim_start_matches('/').to_owned();
    let (bucket, object) = match path.split_once('/') {
        Some((b, o)) => (percent_decode(b), Some(percent_decode(o))),
        None => (percent_decode(&path), None),
    };
    let q = query(&req);
    let method = req.method().clone();
    let headers = stored_headers(&req);
    let copy_source = req.headers().get("x-goog-copy-source").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let range = req.headers().get("range").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "IncompleteBody", "the body could not be read"),
    };
    let mut st = state.lock().unwrap();
    if !st.buckets.contains_key(&bucket) {
        return error(StatusCode::NOT_FOUND, "NoSuchBucket", "The specified bucket does not exist.");
    }
    match (method, object) {
        (Method::GET, None) if q.get("list-type").map(String::as_str) == Some("2") => list(&st, &bucket, &q),
        (Method::POST, Some(name)) if q.contains_key("uploads") => {
            let id = format!("fake-{}", uuid::Uuid::new_v4().simple());
            st.uploads.insert(
                id.clone(),
                Upload { bucket: bucket.clone(), name: name.clone(), headers, parts: BTreeMap::new() },
            );
            xml(format!(
                "<?xml version='1.0' encoding='UTF-8'?><InitiateMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                xml_escape(&bucket),
                xml_escape(&name)
            ))
        }
        (Method::PUT, Some(_)) if q.contains_key("uploadId") => {
            let Some(upload) = st.uploads.get_mut(&q["uploadId"]) else {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload", "The requested upload was not found.");
            };
            let Some(n) = q.get("partNumber").and_then(|n| n.parse::<u32>().ok()).filter(|n| (1..=10_000).contains(n))
            else {
                return error(StatusCode::BAD_REQUEST, "InvalidArgument", "Invalid part number.");
            };
            let etag = format!("\"{}\"", hex::encode(Md5::digest(&body)));
            upload.parts.insert(n, (body, etag.clone()));
            Response::builder().status(200).header("etag", etag).body(Full::new(Bytes::new())).unwrap()
        }
        (Method::POST, Some(_)) if q.contains_key("uploadId") => complete(&mut st, &q["uploadId"], &body),
        (Method::DELETE, Some(_)) if q.contains_key("uploadId") => match st.uploads.remove(&q["uploadId"]) {
            Some(_) => Response::builder().status(204).body(Full::new(Bytes::new())).unwrap(),
            None => error(StatusCode::NOT_FOUND, "NoSuchUpload", "The requested upload was not found."),
        },
        (Method::PUT, Some(name)) => {
            let object = match copy_source {
                Some(source) => {
                    let source = percent_decode(&source);
                    let (sb, so) = source.trim_start_matches('/').split_once('/').unwrap_or((&source, ""));
                    let Some(src) = st.buckets.get(sb).and_then(|b| b.get(so)).cloned() else {
                        return error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.");
                    };
                    src
                }
                None => Object {
                    etag: format!("\"{}\"", hex::encode(Md5::digest(&body))),
                    data: body,
                    headers,
                    generation: 0,
                    updated: SystemTime::now(),
                },
            };
            let stored = store(&mut st, &bucket, &name, object);
            Response::builder()
                .status(200)
                .header("etag", &stored.etag)
                .header("x-goog-generation", stored.generation.to_string())
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
        (m @ (Method::GET | Method::HEAD), Some(name)) => {
            let Some(obj) = st.buckets[&bucket].get(&name).cloned() else {
                return error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.");
            };
            get(&obj, range.as_deref(), m == Method::HEAD)
        }
        (Method::DELETE, Some(name)) => match st.buckets.get_mut(&bucket).unwrap().remove(&name) {
            Some(_) => Response::builder().status(204).body(Full::new(Bytes::new())).unwrap(),
            None => error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist."),
        },
        _ => error(StatusCode::BAD_REQUEST, "NotImplemented", "The fake does not implement this request."),
    }
}

fn store(st: &mut State, bucket: &str, name: &str, mut object: Object) -> Object {
    st.generation += 1;
    object.generation = st.generation;
    object.updated = SystemTime::now();
    st.buckets.get_mut(bucket).unwrap().insert(name.to_owned(), object.clone());
    object
}

fn get(obj: &Object, range: Option<&str>, head: bool) -> Reply {
    let size = obj.data.len() as u64;
    let mut builder = Response::builder()
        .header("etag", &obj.etag)
        .header("last-modified", http_date(obj.updated))
        .header("x-goog-generation", obj.generation.to_string())
        .header("accept-ranges", "bytes");
    for (k, v) in &obj.headers {
        builder = builder.header(k, v);
    }
    let (status, start, end) = match range.and_then(|r| r.strip_prefix("bytes=")) {
        None => (200, 0, size),
        Some(spec) => {
            let (a, b) = spec.split_once('-').unwrap_or((spec, ""));
            let resolved = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
                (Some(first), last) if first < size && last.is_none_or(|l| l >= first) => {
                    Some((first, last.map_or(size, |l| (l + 1).min(size))))
                }
                (None, Some(n)) if n > 0 && size > 0 => Some((size.saturating_sub(n), size)),
                _ => None,
            };
            let Some((s, e)) = resolved else {
                return error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The requested range cannot be satisfied.",
                );
            };
            builder = builder.header("content-range", format!("bytes {s}-{}/{size}", e - 1));
            (206, s, e)
        }
    };
    let data = obj.data.slice(start as usize..end as usize);
    builder = builder.status(status).header("content-length", data.len().to_string());
    builder.body(Full::new(if head { Bytes::new() } else { data })).unwrap()
}

fn list(st: &State, bucket: &str, q: &HashMap<String, String>) -> Reply {
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let max = q.get("max-keys").and_then(|m| m.parse::<usize>().ok()).unwrap_or(1000).clamp(1, 1000);
    let start_after = q.get("start-after").cloned();
    // Continuation tokens: `K<key>` resumes after a key, `P<prefix>` after everything
    // under a common prefix.
    let token =
        q.get("continuation-token").and_then(|t| STANDARD.decode(t).ok()).and_then(|t| String::from_utf8(t).ok());
    let mut contents = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    let mut truncated = false;
    for (name, obj) in st.buckets[bucket].range(prefix.clone()..) {
        if !name.starts_with(&prefix) {
            break;
        }
        if start_after.as_ref().is_some_and(|sa| name <= sa) {
            continue;
        }
        match token.as_deref() {
            Some(t) if t.starts_with('K') && name.as_str() <= &t[1..] => continue,
            Some(t) if t.starts_with('P') && (name.starts_with(&t[1..]) || name.as_str() < &t[1..]) => continue,
            _ => {}
        }
        let rolled = delimiter.as_ref().and_then(|d| {
            let rest = &name[prefix.len()..];
            rest.find(d.as_str()).map(|at| name[..prefix.len() + at + d.len()].to_owned())
        });
        if let Some(p) = &rolled
            && prefixes.last() == Some(p)
        {
            continue;
        }
        if contents.len() + prefixes.len() == max {
            truncated = true;
            break;
        }
        match rolled {
            Some(p) => {
                last = Some(format!("P{p}"));
                prefixes.push(p);
            }
            None => {
                last = Some(format!("K{name}"));
                contents.push((name.clone(), obj.clone()));
            }
        }
    }
    let mut out = format!(
        "<?xml version='1.0' encoding='UTF-8'?><ListBucketResult xmlns='http://doc.s3.amazonaws.com/2006-03-01'><Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max}</MaxKeys><KeyCount>{}</KeyCount><IsTruncated>{truncated}</IsTruncated>",
        xml_escape(bucket),
        xml_escape(&prefix),
        contents.len() + prefixes.len()
    );
    if truncated && let Some(last) = last {
        out.push_str(&format!("<NextContinuationToken>{}</NextContinuationToken>", STANDARD.encode(last)));
    }
    for (name, obj) in contents {
        out.push_str(&format!(
            "<Contents><Key>{}</Key><Generation>{}</Generation><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size></Contents>",
            xml_escape(&name),
            obj.generation,
            rfc3339(obj.updated),
            xml_escape(&obj.etag),
            obj.data.len()
        ));
    }
    for p in prefixes {
        out.push_str(&format!("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", xml_escape(&p)));
    }
    out.push_str("</ListBucketResult>");
    xml(out)
}

/// The (part number, ETag) pairs of a completion body.
fn completion_parts(body: &str) -> Option<Vec<(u32, String)>> {
    let mut parts = Vec::new();
    for chunk in body.split("<Part>").skip(1) {
        let n = chunk.split("<PartNumber>").nth(1)?.split("</PartNumber>").next()?.trim().parse().ok()?;
        let etag = chunk.split("<ETag>").nth(1)?.split("</ETag>").next()?.replace("&quot;", "\"");
        parts.push((n, etag.trim().trim_matches('"').to_owned()));
    }
    Some(parts)
}

fn complete(st: &mut State, id: &str, body: &[u8]) -> Reply {
    let Some(upload) = st.uploads.get(id) else {
        return error(StatusCode::NOT_FOUND, "NoSuchUpload", "The requested upload was not found.");
    };
    let Some(parts) = completion_parts(&String::from_utf8_lossy(body)).filter(|p| !p.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "MalformedXML", "The XML you provided was not well-formed.");
    };
    if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
        return error(StatusCode::BAD_REQUEST, "InvalidPartOrder", "The list of parts was not in ascending order.");
    }
    let mut data = Vec::new();
    for (i, (n, etag)) in parts.iter().enumerate() {
        match upload.parts.get(n) {
            Some((bytes, stored)) if stored.trim_matches('"') == etag => {
                if i + 1 < parts.len() && bytes.len() < MIN_PART {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed object size.",
                    );
                }
                data.extend_from_slice(bytes);
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPart",
                    &format!("Part {n} was not found or its ETag did not match."),
                );
            }
        }
    }
    let upload = st.uploads.remove(id).unwrap();
    // Not an MD5: GCS gives multipart objects an opaque ETag.
    let etag = format!("\"{}\"", STANDARD.encode(uuid::Uuid::new_v4().as_bytes()));
    let object =
        Object { data: Bytes::from(data), etag, headers: upload.headers, generation: 0, updated: SystemTime::now() };
    let stored = store(st, &upload.bucket, &upload.name, object);
    let mut reply = xml(format!(
        "<?xml version='1.0' encoding='UTF-8'?><CompleteMultipartUploadResult><Location>/{0}/{1}</Location><Bucket>{0}</Bucket><Key>{1}</Key><ETag>{2}</ETag></CompleteMultipartUploadResult>",
        xml_escape(&upload.bucket),
        xml_escape(&upload.name),
        xml_escape(&stored.etag)
    ));
    reply.headers_mut().insert("x-goog-generation", stored.generation.to_string().parse().unwrap());
    reply
}
