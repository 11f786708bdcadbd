//! The few requests `object_store` cannot make, signed with its own public authorizers
//! (`AwsAuthorizer`, `AzureAuthorizer`) or a bearer token, and sent through the same HTTP
//! connector:
//!
//! - S3 and GCS: completing a multipart upload with *explicit* part numbers.
//!   `MultipartStore::complete_multipart` numbers the parts it is given 1, 2, 3…, which is
//!   right when a client completes with parts 1..=n (the common case, which uses it); a
//!   client may also complete with a subset (`1, 3`) or start at another number, and then
//!   the store must be told the real numbers.
//! - Azure: committing a block list *with* the object's properties and metadata.
//!   `complete_multipart` commits without them (and `create_multipart_opts` refuses
//!   attributes on Azure), so a client multipart upload would lose its Content-Type, user
//!   metadata and coffer's ETag.
//! - Azure: listing blobs *with* their properties and metadata (`include=metadata`), so a
//!   listing page is one request (object_store's listing has no metadata, which would cost
//!   a HEAD per blob for coffer's ETag), and names object_store cannot parse are skipped
//!   rather than failing the page.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderName, HeaderValue};
use http::{Method, Request};
use object_store::aws::AwsAuthorizer;
use object_store::azure::AzureAuthorizer;
use object_store::client::{HttpClient, HttpErrorKind, HttpRequest, HttpRequestBody};
use object_store::path::Path;
use object_store::{Attribute, AttributeValue, Attributes, CredentialProvider};
use serde::Deserialize;
use url::Url;

use super::credentials::{AzureCredentials, GcsCredentials, S3Credentials};
use super::crypto::RingCrypto;
use super::metadata;
use crate::{Error, Result};

/// How often a raw request is tried when the store is unreachable or answers 5xx.
const ATTEMPTS: usize = 3;

/// The raw requests of one store.
pub(crate) enum Raw {
    S3(S3Raw),
    Azure(AzureRaw),
    Gcs(GcsRaw),
}

pub(crate) struct S3Raw {
    pub client: HttpClient,
    pub credentials: Arc<S3Credentials>,
    pub region: String,
    /// `https://bucket.s3.region.amazonaws.com`, or `endpoint/bucket` (path style).
    pub bucket_endpoint: String,
}

pub(crate) struct AzureRaw {
    pub client: HttpClient,
    pub credentials: Arc<AzureCredentials>,
    pub account: String,
    /// The container's URL (`https://account.blob.core.windows.net/container`).
    pub container_url: Url,
}

pub(crate) struct GcsRaw {
    pub client: HttpClient,
    pub credentials: Arc<GcsCredentials>,
    /// `https://storage.googleapis.com/bucket`.
    pub bucket_url: String,
}

/// An answer, or why there is none.
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

fn encode_s3_path(path: &Path) -> String {
    // Everything but unreserved characters and `/`, as S3 (and object_store) expect.
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(path.as_ref(), SET).to_string()
}

fn encode_gcs_path(path: &Path) -> String {
    percent_encoding::utf8_percent_encode(path.as_ref(), percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The XML of a multipart completion (S3's format, which GCS's XML API shares).
fn completion_xml(parts: &[(u32, String)]) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        let etag = etag.replace('&', "&amp;").replace('<', "&lt;");
        xml.push_str(&format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// The text of the first `<tag>` element of an XML answer, unescaped.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + body[start..].find(&format!("</{tag}>"))?;
    Some(
        body[start..end]
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

impl Raw {
    /// Complete a multipart upload with exactly these (part number, store ETag) pairs.
    /// Returns the store's ETag of the object, without quotes.
    pub(crate) async fn complete_parts(
        &self,
        tier: &str,
        path: &Path,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<String> {
        let body = Bytes::from(completion_xml(parts));
        let answer = match self {
            Raw::S3(s3) => {
                let mut url = Url::parse(&format!("{}/{}", s3.bucket_endpoint, encode_s3_path(path)))
                    .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: {e}"))))?;
                url.query_pairs_mut().append_pair("uploadId", upload_id);
                send(tier, &s3.client, || {
                    let mut req = request(Method::POST, &url, body.clone())?;
                    let credential = s3.credentials.0.get();
                    AwsAuthorizer::new(&credential, "s3", &s3.region)
                        .with_crypto(&RingCrypto)
                        .try_authorize(&mut req, None)
                        .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: signing: {e}"))))?;
                    Ok(req)
                })
                .await?
            }
            Raw::Gcs(gcs) => {
                let mut url = Url::parse(&format!("{}/{}", gcs.bucket_url, encode_gcs_path(path)))
                    .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: {e}"))))?;
                url.query_pairs_mut().append_pair("uploadId", upload_id);
                let token = gcs
                    .credentials
                    .get_credential()
                    .await
                    .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: {e}"))))?;
                send(tier, &gcs.client, || {
                    let mut req = request(Method::POST, &url, body.clone())?;
                    let bearer = HeaderValue::from_str(&format!("Bearer {}", token.bearer))
                        .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: {e}"))))?;
                    req.headers_mut().insert(AUTHORIZATION, bearer);
                    Ok(req)
                })
                .await?
            }
            Raw::Azure(_) => unreachable!("Azure commits block lists"),
        };
        if answer.body.contains("<Error>") || !(200..300).contains(&answer.status) {
            return Err(store_error(tier, "completing a multipart upload", &answer));
        }
        let etag = xml_text(&answer.body, "ETag").ok_or_else(|| {
            Error::Io(std::io::Error::other(format!("tier {tier}: the completion answer has no ETag")))
        })?;
        Ok(metadata::strip_etag(&etag))
    }

    /// Commit Azure blocks, in order, as the blob at `path`, with these properties and
    /// metadata. Returns the blob's ETag.
    pub(crate) async fn commit_blocks(
        &self,
        tier: &str,
        path: &Path,
        block_ids: &[String],
        attributes: &Attributes,
    ) -> Result<String> {
        let Raw::Azure(az) = self else { unreachable!("only Azure commits block lists") };
        let mut url = az.container_url.clone();
        url.path_segments_mut()
            .map_err(|_| Error::Io(std::io::Error::other(format!("tier {tier}: the container URL cannot be a base"))))?
            .extend(path.parts().map(|p| p.as_ref().to_owned()));
        url.query_pairs_mut().append_pair("comp", "blocklist");
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in block_ids {
            xml.push_str(&format!("<Latest>{}</Latest>", BASE64.encode(id)));
        }
        xml.push_str("</BlockList>");
        let body = Bytes::from(xml);
        let mut headers = http::HeaderMap::new();
        for (k, v) in attributes {
            let name = match k {
                Attribute::ContentType => "x-ms-blob-content-type".to_owned(),
                Attribute::ContentEncoding => "x-ms-blob-content-encoding".to_owned(),
                Attribute::ContentLanguage => "x-ms-blob-content-language".to_owned(),
                Attribute::ContentDisposition => "x-ms-blob-content-disposition".to_owned(),
                Attribute::CacheControl => "x-ms-blob-cache-control".to_owned(),
                Attribute::Metadata(name) => format!("x-ms-meta-{name}"),
                _ => continue,
            };
            let name = HeaderName::try_from(name)
                .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: metadata name: {e}"))))?;
            let value = HeaderValue::from_str(v.as_ref())
                .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: metadata value: {e}"))))?;
            headers.insert(name, value);
        }
        let answer = send(tier, &az.client, || {
            let mut req = request(Method::PUT, &url, body.clone())?;
            req.headers_mut().extend(headers.clone());
            let credential = az.credentials.0.get();
            AzureAuthorizer::new(&credential, &az.account)
                .with_crypto(&RingCrypto)
                .try_authorize(&mut req)
                .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: signing: {e}"))))?;
            Ok(req)
        })
        .await?;
        if !(200..300).contains(&answer.status) {
            return Err(store_error(tier, "committing a block list", &answer));
        }
        let etag = answer.headers.get(ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Ok(metadata::strip_etag(etag))
    }
}

/// One blob of an Azure listing.
pub(crate) struct ListedBlob {
    pub name: String,
    pub size: u64,
    /// The store's ETag (quoted as Azure sends it).
    pub etag: String,
    pub last_modified: SystemTime,
    /// The properties and metadata, as `object_store` would report them on a GET.
    pub attributes: Attributes,
}

/// One page of an Azure listing: blobs and common prefixes (each in name order).
pub(crate) struct BlobPage {
    pub blobs: Vec<ListedBlob>,
    pub prefixes: Vec<String>,
    pub next_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnumerationResults {
    #[serde(default)]
    blobs: BlobsXml,
    #[serde(default)]
    next_marker: Option<String>,
}

#[derive(Deserialize, Default)]
struct BlobsXml {
    #[serde(rename = "Blob", default)]
    blobs: Vec<BlobXml>,
    #[serde(rename = "BlobPrefix", default)]
    prefixes: Vec<PrefixXml>,
}

/// A name, percent-encoded by Azure when it holds characters XML cannot carry.
#[derive(Deserialize)]
struct NameXml {
    #[serde(rename = "@Encoded", default)]
    encoded: Option<String>,
    #[serde(rename = "$text", default)]
    text: String,
}

impl NameXml {
    fn value(self) -> String {
        if self.encoded.as_deref() == Some("true") {
            percent_encoding::percent_decode_str(&self.text).decode_utf8_lossy().into_owned()
        } else {
            self.text
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PrefixXml {
    name: NameXml,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BlobXml {
    name: NameXml,
    properties: PropertiesXml,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct PropertiesXml {
    #[serde(rename = "Last-Modified")]
    last_modified: String,
    #[serde(rename = "Etag")]
    etag: String,
    #[serde(rename = "Content-Length")]
    content_length: u64,
    #[serde(rename = "Content-Type", default)]
    content_type: Option<String>,
    #[serde(rename = "Content-Encoding", default)]
    content_encoding: Option<String>,
    #[serde(rename = "Content-Language", default)]
    content_language: Option<String>,
    #[serde(rename = "Content-Disposition", default)]
    content_disposition: Option<String>,
    #[serde(rename = "Cache-Control", default)]
    cache_control: Option<String>,
    #[serde(rename = "ResourceType", default)]
    resource_type: Option<String>,
}

/// An RFC 1123 date (`Wed, 09 Sep 2009 09:20:02 GMT`).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut parts = s.split_whitespace().skip(1);
    let day: u64 = parts.next()?.parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| Some(*m) == parts.clone().next())? as u64
        + 1;
    parts.next();
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|x| x.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = (y - era * 400) as u64;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe as i64 - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

impl Raw {
    /// One page of blobs below `prefix` (with `include=metadata`), rolled up at
    /// `delimiter`; `start_from` (inclusive, ignored by Azurite) on the first page only.
    pub(crate) async fn list_blobs(
        &self,
        tier: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start_from: Option<&str>,
        marker: Option<&str>,
        max: usize,
    ) -> Result<BlobPage> {
        let Raw::Azure(az) = self else { unreachable!("only Azure lists through raw requests") };
        let mut url = az.container_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("restype", "container").append_pair("comp", "list").append_pair("include", "metadata");
            q.append_pair("prefix", prefix).append_pair("maxresults", &max.to_string());
            if let Some(d) = delimiter {
                q.append_pair("delimiter", d);
            }
            match (marker, start_from) {
                (Some(m), _) => {
                    q.append_pair("marker", m);
                }
                (None, Some(s)) => {
                    q.append_pair("startFrom", s);
                }
                (None, None) => {}
            }
        }
        let answer = send(tier, &az.client, || {
            let mut req = request(Method::GET, &url, Bytes::new())?;
            req.headers_mut().remove(CONTENT_TYPE);
            req.headers_mut().remove(CONTENT_LENGTH);
            let credential = az.credentials.0.get();
            AzureAuthorizer::new(&credential, &az.account)
                .with_crypto(&RingCrypto)
                .try_authorize(&mut req)
                .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: signing: {e}"))))?;
            Ok(req)
        })
        .await?;
        if !(200..300).contains(&answer.status) {
            return Err(store_error(tier, "listing blobs", &answer));
        }
        let parsed: EnumerationResults = quick_xml::de::from_str(&answer.body)
            .map_err(|e| Error::Io(std::io::Error::other(format!("tier {tier}: an unreadable blob listing: {e}"))))?;
        let mut blobs = Vec::with_capacity(parsed.blobs.blobs.len());
        for b in parsed.blobs.blobs {
            let p = b.properties;
            if p.resource_type.as_deref() == Some("directory") {
                continue; // a directory of a hierarchical namespace, not a blob
            }
            let name = b.name.value();
            let Some(last_modified) = parse_http_date(&p.last_modified) else {
                tracing::warn!(tier, name, "skipping a listed blob with an unreadable date");
                continue;
            };
            let mut attributes = Attributes::new();
            let standard = [
                (Attribute::ContentType, p.content_type),
                (Attribute::ContentEncoding, p.content_encoding),
                (Attribute::ContentLanguage, p.content_language),
                (Attribute::ContentDisposition, p.content_disposition),
                (Attribute::CacheControl, p.cache_control),
            ];
            for (attribute, value) in standard {
                if let Some(v) = value.filter(|v| !v.is_empty()) {
                    attributes.insert(attribute, AttributeValue::from(v));
                }
            }
            for (k, v) in b.metadata.unwrap_or_default() {
                attributes.insert(Attribute::Metadata(k.into()), AttributeValue::from(v));
            }
            blobs.push(ListedBlob { name, size: p.content_length, etag: p.etag, last_modified, attributes });
        }
        Ok(BlobPage {
            blobs,
            prefixes: parsed.blobs.prefixes.into_iter().map(|p| p.name.value()).collect(),
            next_marker: parsed.next_marker.filter(|m| !m.is_empty()),
        })
    }
}

fn request(method: Method, url: &Url, body: Bytes) -> Result<HttpRequest> {
    let len = body.len();
    let mut req = Request::builder()
        .method(method)
        .uri(url.as_str())
        .body(HttpRequestBody::from(body))
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
    req.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(len));
    req.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    Ok(req)
}

/// Send a request built (and signed) afresh for each attempt; retry when the store is
/// unreachable or answers 5xx.
async fn send(tier: &str, client: &HttpClient, build: impl Fn() -> Result<HttpRequest>) -> Result<Answer> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = client.execute(build()?).await;
        let retry = match &outcome {
            Err(e) => matches!(
                e.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Request | HttpErrorKind::Timeout | HttpErrorKind::Interrupted
            ),
            Ok(r) => r.status().is_server_error(),
        };
        if retry && attempt < ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            continue;
        }
        let response =
            outcome.map_err(|e| Error::Unavailable(format!("tier {tier}: the store is unavailable: {e}")))?;
        let (parts, body) = response.into_parts();
        let body = body
            .bytes()
            .await
            .map_err(|e| Error::Unavailable(format!("tier {tier}: reading the store's answer: {e}")))?;
        return Ok(Answer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
}

/// The error a failed raw request means.
fn store_error(tier: &str, what: &str, answer: &Answer) -> Error {
    let code = xml_text(&answer.body, "Code").unwrap_or_default();
    let message = xml_text(&answer.body, "Message").unwrap_or_default();
    match (answer.status, code.as_str()) {
        (404, _) | (_, "NoSuchUpload") => Error::NoSuchUpload,
        (_, "InvalidPart") | (_, "InvalidBlockList") => {
            Error::InvalidPart(format!("the store refused the parts: {message}"))
        }
        (_, "InvalidPartOrder") => Error::InvalidPartOrder,
        (_, "EntityTooSmall") => Error::EntityTooSmall,
        (s, _) if s >= 500 || s == 429 => {
            Error::Unavailable(format!("tier {tier}: {what}: the store answered {s} {code}: {message}"))
        }
        (s, _) => {
            Error::Io(std::io::Error::other(format!("tier {tier}: {what}: the store answered {s} {code}: {message}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_bodies_and_answers() {
        assert_eq!(
            completion_xml(&[(1, "\"a\"".into()), (3, "\"b\"".into())]),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"a\"</ETag></Part>\
             <Part><PartNumber>3</PartNumber><ETag>\"b\"</ETag></Part></CompleteMultipartUpload>"
        );
        let answer = "<CompleteMultipartUploadResult><Bucket>b</Bucket><ETag>&quot;abc-2&quot;</ETag></CompleteMultipartUploadResult>";
        assert_eq!(xml_text(answer, "ETag").as_deref(), Some("\"abc-2\""));
        let err = Answer {
            status: 400,
            headers: Default::default(),
            body: "<Error><Code>InvalidPart</Code><Message>m</Message></Error>".into(),
        };
        assert!(matches!(store_error("t", "x", &err), Error::InvalidPart(_)));
        assert_eq!(encode_s3_path(&Path::parse("a b/c%25/é").unwrap()), "a%20b/c%2525/%C3%A9");
    }

    #[test]
    fn azure_listings_parse() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://x/" ContainerName="c"><Prefix>p/</Prefix><MaxResults>3</MaxResults><Delimiter>/</Delimiter><Blobs><Blob><Name>p/a</Name><Properties><Last-Modified>Wed, 09 Sep 2009 09:20:02 GMT</Last-Modified><Etag>0x8D1</Etag><Content-Length>5</Content-Length><Content-Type>text/plain</Content-Type><Content-Encoding /><BlobType>BlockBlob</BlobType></Properties><Metadata><coffer_etag>abc</coffer_etag><k>v</k></Metadata></Blob><BlobPrefix><Name>p/b/</Name></BlobPrefix><Blob><Name Encoded="true">p%2Fc</Name><Properties><Last-Modified>Thu, 01 Jan 1970 00:00:01 GMT</Last-Modified><Etag>0x8D2</Etag><Content-Length>0</Content-Length></Properties><Metadata /></Blob></Blobs><NextMarker>m2</NextMarker></EnumerationResults>"#;
        let parsed: EnumerationResults = quick_xml::de::from_str(xml).unwrap();
        assert_eq!(parsed.next_marker.as_deref(), Some("m2"));
        assert_eq!(parsed.blobs.blobs.len(), 2);
        assert_eq!(parsed.blobs.prefixes.len(), 1);
        let b = &parsed.blobs.blobs[0];
        assert_eq!(b.metadata.as_ref().unwrap()["coffer_etag"], "abc");
        assert_eq!(b.properties.content_length, 5);
        assert_eq!(parse_http_date(&b.properties.last_modified), Some(UNIX_EPOCH + Duration::from_secs(1_252_488_002)));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:01 GMT"), Some(UNIX_EPOCH + Duration::from_secs(1)));
        assert_eq!(
            parse_http_date("Sat, 29 Feb 2020 23:59:59 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_583_020_799))
        );
        let mut parsed = parsed;
        let second = parsed.blobs.blobs.pop().unwrap();
        assert_eq!(second.name.value(), "p/c");
    }
}
