//! The webhook's HTTPS server end to end: a certificate made in the test (a CA and leaves
//! signed by it, as cert-manager's CA issuer would), real AdmissionReview bodies over TLS, and
//! the certificate files replaced under the running server.

mod webhook_support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use coffer_k8s::settings::{LabelKeys, Settings};
use coffer_k8s::webhook::{MemoryLookup, TlsFiles, serve};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use webhook_support::*;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "coffer webhook test CA");
        Self { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap() }
    }

    /// A leaf for the webhook's service names and 127.0.0.1: (cert PEM, key PEM, cert DER).
    fn leaf(&self, cn: &str) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![
            "coffer-webhook.coffer-system.svc".to_owned(),
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// Replace a file the way the kubelet updates a Secret volume: write aside, then rename.
fn replace(path: &Path, contents: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, contents).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(tls: Option<TlsFiles>, lookup: MemoryLookup, settings: Settings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, tls, Arc::new(lookup), settings, async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.task).await.expect("the server stops").unwrap().unwrap();
    }
}

fn connector(ca_der: &[u8]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec())).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every connection a full handshake: a resumed session would report the certificate of
    // the session it resumes, not the one the server serves now.
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// One HTTPS request on a new connection: (status, body, the certificate the server showed).
async fn https(
    connector: &TlsConnector,
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (u16, Value, Vec<u8>) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("coffer-webhook.coffer-system.svc").unwrap();
    let tls = connector.connect(name, tcp).await.expect("the TLS handshake succeeds");
    let served = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (status, value) = request(TokioIo::new(tls), method, path, body).await;
    (status, value, served)
}

async fn request<T>(io: TokioIo<T>, method: &str, path: &str, body: Vec<u8>) -> (u16, Value)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "coffer-webhook.coffer-system.svc")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

fn lookup() -> MemoryLookup {
    let keys = LabelKeys::coffer();
    MemoryLookup::new()
        .with_pv(pv(&keys, "coffer-alice-standard", Some("alice"), None))
        .with_pvc(pvc("alice", "standard", &[("coffer.dev/automount", "true")], &["ReadWriteMany"]))
        .with_pvc(pvc("alice", "workspace-alice-nb", &[], &["ReadWriteOnce"]))
}

fn answer(status: u16, body: Value) -> coffer_k8s::webhook::Answer {
    coffer_k8s::webhook::Answer { status, body }
}

#[tokio::test]
async fn https_end_to_end_with_certificate_reload() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let (cert_a, key_a, der_a) = ca.leaf("first");
    let files = TlsFiles::in_dir(dir.path()).check_every(Duration::from_millis(100));
    std::fs::write(&files.cert, &cert_a).unwrap();
    std::fs::write(&files.key, &key_a).unwrap();
    let server = Server::start(Some(files.clone()), lookup(), Settings::default()).await;
    let client = connector(ca.issuer.der());

    // Health.
    let (status, body, served) = https(&client, server.addr, "GET", "/healthz", Vec::new()).await;
    assert_eq!((status, body), (200, Value::String("ok".into())));
    assert_eq!(served, der_a);

    // A validating review.
    let review = fixture("pvc_create.json");
    let (status, body, _) = https(&client, server.addr, "POST", "/validate", body_of(&review)).await;
    assert_allowed(&answer(status, body), &review);
    // A denial: Mallory's update towards Alice's volume.
    let review = fixture("pvc_update_volume_name.json");
    let (status, body, _) = https(&client, server.addr, "POST", "/validate", body_of(&review)).await;
    assert_denied(&answer(status, body), &review, &["\"alice\""]);
    // A mutation.
    let review = fixture("pod_create_notebook.json");
    let (status, body, _) = https(&client, server.addr, "POST", "/mutate", body_of(&review)).await;
    let mutated = answer(status, body);
    assert_allowed(&mutated, &review);
    let pod = patched_pod(&review, &mutated);
    assert!(claim_volumes(&pod).contains_key("standard"));
    // Malformed input.
    let (status, body, _) = https(&client, server.addr, "POST", "/mutate", b"[]".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body["message"].is_string(), "{body}");

    // cert-manager renews: new files, served without a restart.
    let (cert_b, key_b, der_b) = ca.leaf("second");
    replace(&files.cert, &cert_b);
    replace(&files.key, &key_b);
    let served = eventually(|| https(&client, server.addr, "GET", "/healthz", Vec::new()), |s| s.2 == der_b).await;
    assert_eq!(served.0, 200);

    // A broken pair (a key that is not the certificate's, then garbage) is refused: the
    // previous certificate goes on being served.
    let (cert_c, _, _) = ca.leaf("third");
    replace(&files.cert, &cert_c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        assert_eq!(https(&client, server.addr, "GET", "/healthz", Vec::new()).await.2, der_b);
    }
    replace(&files.key, "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(https(&client, server.addr, "GET", "/healthz", Vec::new()).await.2, der_b);
    // Until the matching key arrives.
    let (cert_d, key_d, der_d) = ca.leaf("fourth");
    replace(&files.key, &key_d);
    replace(&files.cert, &cert_d);
    eventually(|| https(&client, server.addr, "GET", "/healthz", Vec::new()), |s| s.2 == der_d).await;

    server.stop().await;
}

fn body_of(review: &Value) -> Vec<u8> {
    body(review)
}

/// Retry `f` (up to ~5 s) until `done` holds for its result.
async fn eventually<F, Fut, T>(f: F, done: impl Fn(&T) -> bool) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for _ in 0..50 {
        let out = f().await;
        if done(&out) {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the condition never held");
}

#[tokio::test]
async fn a_broken_initial_certificate_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let files = TlsFiles::in_dir(dir.path());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = serve(listener, Some(files.clone()), Arc::new(MemoryLookup::new()), Settings::default(), async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tls.crt"), "{err}");

    let ca = Ca::new();
    let (cert, _, _) = ca.leaf("a");
    let (_, other_key, _) = ca.leaf("b");
    std::fs::write(&files.cert, cert).unwrap();
    std::fs::write(&files.key, other_key).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err =
        serve(listener, Some(files), Arc::new(MemoryLookup::new()), Settings::default(), async {}).await.unwrap_err();
    assert!(err.to_string().contains("does not go with"), "{err}");
}

#[tokio::test]
async fn plain_http_for_tests_and_routes() {
    let server = Server::start(None, lookup(), Settings::default()).await;
    let get = |path: &'static str, method: &'static str, body: Vec<u8>| async move {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        request(TokioIo::new(tcp), method, path, body).await
    };
    assert_eq!(get("/healthz", "GET", Vec::new()).await.0, 200);
    let review = fixture("pod_create_argo.json");
    let (status, body) = get("/mutate", "POST", body_of(&review)).await;
    let pod = patched_pod(&review, &answer(status, body));
    assert_eq!(pod["spec"]["containers"][0], review["request"]["object"]["spec"]["containers"][0]);
    assert_eq!(get("/nowhere", "GET", Vec::new()).await.0, 404);
    assert_eq!(get("/validate", "GET", Vec::new()).await.0, 405);
    server.stop().await;
}
