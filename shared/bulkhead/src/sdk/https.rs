//! The HTTP client under the AWS SDK: HTTP/1.1 over rustls on ring, with a pool of kept-alive
//! connections (hyper-util's), plain HTTP for local endpoints such as moto.
//!
//! The SDK's own client (`aws-smithy-http-client`) always builds `h2` and hyper's HTTP/2 in,
//! and offers `h2` by ALPN, though DynamoDB, EventBridge and SES are spoken over HTTP/1.1 here.
//! Leaving it out took about 1 MB off every bootstrap (README: Performance). Retries,
//! timeouts per attempt and signing stay the SDK's; this only sends one request.

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{HttpConnector as TcpConnector, capture_connection};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

pub(crate) type Pool = Client<Timed<HttpsConnector<TcpConnector>>, SdkBody>;
type BoxError = Box<dyn StdError + Send + Sync>;

/// The client of an SDK configuration: one pool for all the SDK clients built from it, made
/// when the first asks for a connector, with the connect timeout of its settings (Bulkhead's
/// are the same for every client) and the trust roots `roots` gives then: the system's
/// (`rustls-native-certs`) in every process but tests.
#[derive(Clone)]
pub(crate) struct Https {
    pool: Arc<OnceLock<Pool>>,
    roots: Arc<dyn Fn() -> RootCertStore + Send + Sync>,
}

impl Https {
    pub(crate) fn client(
        roots: impl Fn() -> RootCertStore + Send + Sync + 'static,
    ) -> SharedHttpClient {
        SharedHttpClient::new(Https {
            pool: Arc::default(),
            roots: Arc::new(roots),
        })
    }

    fn pool(&self, connect_timeout: Option<Duration>) -> &Pool {
        self.pool
            .get_or_init(|| pool((self.roots)(), connect_timeout))
    }
}

/// A pool of kept-alive connections that trusts `roots`, each connection made within
/// `connect_timeout`: the SDK's, and that of a port that sends its requests itself
/// ([`crate::bus::aws`]).
pub(crate) fn pool(roots: RootCertStore, connect_timeout: Option<Duration>) -> Pool {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(Timed(https, connect_timeout))
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Https")
    }
}

/// The system's trust roots, read once a process: the notifications listener's DynamoDB and
/// SES clients would read them twice. Certificates that do not parse are passed over, as the
/// SDK's own client does.
pub(crate) fn system_roots() -> RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "a trust root could not be loaded");
            }
            roots.add_parsable_certificates(found.certs);
            roots
        })
        .clone()
}

impl HttpClient for Https {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Sender(self.pool(settings.connect_timeout()).clone()))
    }
}

/// Sends each request on a pooled connection.
#[derive(Debug)]
struct Sender(Pool);

impl HttpConnector for Sender {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(error) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::user(error.into())));
            }
        };
        // The SDK closes a connection that answered a transient error (a 5xx, throttling), so
        // that the retry goes elsewhere: it reaches the connection through this capture.
        let captured = capture_connection(&mut request);
        if let Some(smithy) = request.extensions().get::<CaptureSmithyConnection>() {
            smithy.set_connection_retriever(move || {
                captured.connection_metadata().as_ref()?;
                let captured = captured.clone();
                let poison = move || {
                    if let Some(connection) = captured.connection_metadata().as_ref() {
                        connection.poison();
                    }
                };
                Some(
                    ConnectionMetadata::builder()
                        .proxied(false)
                        .poison_fn(poison)
                        .build(),
                )
            });
        }
        let sent = self.0.request(request);
        HttpConnectorFuture::new(async move {
            match sent.await {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|error| ConnectorError::other(error.into(), None)),
                Err(error) => Err(classify(error)),
            }
        })
    }
}

/// A connector whose whole connection, name lookup, TCP and TLS handshake, must be made
/// within the SDK's connect timeout (hyper-util's own times only the TCP connect).
#[derive(Clone)]
pub(crate) struct Timed<C>(C, Option<Duration>);

impl<C> tower_service::Service<http::Uri> for Timed<C>
where
    C: tower_service::Service<http::Uri>,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (connecting, limit) = (self.0.call(uri), self.1);
        Box::pin(async move {
            let Some(limit) = limit else {
                return connecting.await.map_err(Into::into);
            };
            match tokio::time::timeout(limit, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within the connect timeout ({limit:?})"),
                ))),
            }
        })
    }
}

/// How the SDK's retry strategy should see a failed send: a connection that could not be
/// opened, or broke, is an I/O error and is retried; so is an answer cut short.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let io = source::<std::io::Error>(&error);
    let broken = error.is_connect() || io.is_some();
    let hyper = source::<hyper::Error>(&error);
    if hyper.is_some_and(|e| e.is_timeout())
        || io.is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
    {
        ConnectorError::timeout(error.into())
    } else if broken || hyper.is_some_and(|e| e.is_closed() || e.is_canceled()) {
        ConnectorError::io(error.into())
    } else if hyper.is_some_and(|e| e.is_incomplete_message()) {
        ConnectorError::other(error.into(), Some(ErrorKind::TransientError))
    } else if hyper.is_some_and(|e| e.is_user()) {
        ConnectorError::user(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}

fn source<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(|e| e.downcast_ref::<E>())
}

#[cfg(test)]
mod tests {
    use super::Https;
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use rustls::RootCertStore;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    /// A root of the test's own, and a certificate it signed for 127.0.0.1 with its key.
    fn certificates() -> (
        CertificateDer<'static>,
        CertificateDer<'static>,
        PrivateKeyDer<'static>,
    ) {
        let mut root = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root =
            rcgen::CertifiedIssuer::self_signed(root, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &root)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (root.der().clone(), server.der().clone(), key)
    }

    /// A TLS server on 127.0.0.1 that offers `h2` and `http/1.1` by ALPN and answers its
    /// first `failing` requests 500, every other `200 {}`, each connection kept open. It
    /// counts the connections it accepts and hands over the protocol each one agreed.
    async fn tls_server(
        certificate: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        failing: usize,
    ) -> (
        String,
        Arc<AtomicUsize>,
        mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    ) {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let (agreed, protocols) = mpsc::unbounded_channel();
        let counted = connections.clone();
        let answered = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let (acceptor, agreed) = (acceptor.clone(), agreed.clone());
                let answered = answered.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let _ = agreed.send(tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec));
                    loop {
                        let failed = answered.fetch_add(1, Ordering::SeqCst) < failing;
                        if !answer_one(&mut tls, failed).await {
                            break;
                        }
                    }
                });
            }
        });
        (url, connections, protocols)
    }

    /// Reads one request (its head and `content-length` bytes of body) and answers it, 500
    /// when `failed`; false when the connection has ended.
    async fn answer_one(
        tls: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        failed: bool,
    ) -> bool {
        let mut request = Vec::new();
        let mut buffer = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match tls.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        };
        let head = String::from_utf8_lossy(&request[..head_end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut rest = vec![0u8; (head_end + length).saturating_sub(request.len())];
        tls.read_exact(&mut rest).await.unwrap();
        let (status, body) = if failed {
            let error = r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError"}"#;
            ("500 Internal Server Error", error)
        } else {
            ("200 OK", "{}")
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(answer.as_bytes()).await.is_ok()
    }

    fn dynamodb(
        http: aws_smithy_runtime_api::client::http::SharedHttpClient,
        url: &str,
        attempts: u32,
    ) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(url)
            .region(Region::new("eu-west-3"))
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(attempts)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .timeout_config(
                aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .build(),
            )
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    #[tokio::test]
    async fn requests_go_over_tls_as_http_1_1_on_kept_alive_connections() {
        let (root, certificate, key) = certificates();
        let (url, connections, mut protocols) = tls_server(certificate, key, 0).await;
        let client = dynamodb(
            Https::client(move || {
                let mut roots = RootCertStore::empty();
                roots.add(root.clone()).unwrap();
                roots
            }),
            &url,
            1,
        );
        for _ in 0..5 {
            let tables = client.list_tables().send().await.unwrap();
            assert!(tables.table_names().is_empty());
        }
        let opened = connections.load(Ordering::SeqCst);
        assert!(
            opened < 5,
            "{opened} connections for 5 requests: none was kept"
        );
        let agreed = protocols.recv().await.unwrap();
        assert_ne!(agreed.as_deref(), Some(&b"h2"[..]), "HTTP/2 was offered");
    }

    #[tokio::test]
    async fn a_server_whose_root_is_not_trusted_is_refused() {
        let (_, certificate, key) = certificates();
        let (url, _, _) = tls_server(certificate, key, 0).await;
        let client = dynamodb(Https::client(super::system_roots), &url, 1);
        let error = client.list_tables().send().await.unwrap_err();
        let error = format!(
            "{:?}",
            aws_smithy_types::error::display::DisplayErrorContext(&error)
        );
        assert!(error.contains("UnknownIssuer"), "{error}");
    }

    #[tokio::test]
    async fn a_tls_handshake_that_never_ends_is_cut_by_the_connect_timeout() {
        // Accepts each connection and holds it, silent.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = vec![];
            loop {
                held.push(listener.accept().await.unwrap().0);
            }
        });
        let client = dynamodb(Https::client(super::system_roots), &url, 1);
        let started = Instant::now();
        let error = client.list_tables().send().await.unwrap_err();
        let took = started.elapsed();
        let aws_sdk_dynamodb::error::SdkError::DispatchFailure(failure) = &error else {
            panic!("not a failure to send: {error:?}");
        };
        assert!(failure.is_timeout(), "{error:?}");
        assert!(
            took < Duration::from_secs(3),
            "cut after {took:?}, not by the 1 s connect timeout"
        );
    }

    #[tokio::test]
    async fn a_connection_that_answered_a_server_error_is_not_used_again() {
        let (root, certificate, key) = certificates();
        let (url, connections, _) = tls_server(certificate, key, 1).await;
        let roots = move || {
            let mut roots = RootCertStore::empty();
            roots.add(root.clone()).unwrap();
            roots
        };
        let client = dynamodb(Https::client(roots), &url, 2);
        client
            .list_tables()
            .send()
            .await
            .expect("the retry succeeds");
        assert_eq!(
            connections.load(Ordering::SeqCst),
            2,
            "the SDK closes the connection that answered 500, and retries on a new one"
        );
    }
}
