//! The bus port on EventBridge: each `PutEvents` request written, signed (`aws-sigv4`, the
//! SDK's own signer) and sent (on a pool built as the SDK clients' is, `crate::sdk::https`)
//! here.
//!
//! The SDK's generated client ran about 20 interceptor hooks, merged its configuration
//! layers and built type-erased inputs and outputs for every request: without it the
//! trigger takes a fifth less time at 90 requests a batch (README: Performance). What the
//! trigger needs of it is small: one operation, retried by the trigger itself
//! ([`crate::trigger`]), whose endpoint is resolved once, by the SDK's rules, and whose
//! credentials are those of the SDK's configuration.

use super::{Bus, BusEntry, EntryFailure};
use crate::{Error, Result};
use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_eventbridge::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::date_time::{DateTime, Format};
use aws_types::SdkConfig;
use aws_types::service_config::ServiceConfigKey;
use http_body_util::BodyExt;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// How long before they expire credentials are fetched again.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// An EventBridge event bus.
pub struct EventBridgeBus {
    name: String,
    endpoint: http::Uri,
    /// The `host` header, signed.
    host: String,
    region: String,
    credentials: CachedCredentials,
    /// Made at the first request, so that reading the trust roots is not part of a start.
    connections: OnceLock<crate::sdk::https::Pool>,
}

impl EventBridgeBus {
    /// The bus `name`, reached with the region, credentials and endpoint of `config`, as an
    /// SDK client built from it would: `AWS_ENDPOINT_URL_EVENTBRIDGE`, then `AWS_ENDPOINT_URL`,
    /// then the SDK's endpoint rules for the region.
    pub fn new(config: &SdkConfig, name: impl Into<String>) -> Result<Self> {
        let region = config
            .region()
            .ok_or_else(|| Error::Config("EventBridge needs a region".into()))?
            .to_string();
        let credentials = config
            .credentials_provider()
            .ok_or_else(|| Error::Config("EventBridge needs credentials".into()))?;
        let endpoint: http::Uri = endpoint(config)?
            .parse()
            .map_err(|e| Error::Config(format!("EventBridge endpoint: {e}")))?;
        let host = endpoint
            .authority()
            .ok_or_else(|| Error::Config(format!("EventBridge endpoint {endpoint} has no host")))?
            .to_string();
        Ok(EventBridgeBus {
            name: name.into(),
            endpoint,
            host,
            region,
            credentials: CachedCredentials {
                provider: credentials,
                current: tokio::sync::Mutex::new(None),
            },
            connections: OnceLock::new(),
        })
    }

    /// The request of one attempt, signed now.
    async fn signed(&self, body: bytes::Bytes) -> Result<http::Request<SdkBody>> {
        let identity = self.credentials.get().await?.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("events")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Error::Bus(format!("signing: {e}")))?
            .into();
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", self.host.as_str()),
            ("x-amz-target", "AWSEvents.PutEvents"),
        ];
        let uri = self.endpoint.to_string();
        let signable = SignableRequest::new(
            "POST",
            uri.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| Error::Bus(format!("signing: {e}")))?;
        let (signature, _) = sign(signable, &params)
            .map_err(|e| Error::Bus(format!("signing: {e}")))?
            .into_parts();
        let mut request = http::Request::post(&self.endpoint);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        // As the SDK does in Lambda, so that EventBridge passes the X-Ray trace on; not signed.
        if let Some(trace) = lambda_trace_id() {
            request = request.header("x-amzn-trace-id", trace);
        }
        let mut request = request
            .body(SdkBody::from(body))
            .map_err(|e| Error::Bus(e.to_string()))?;
        signature.apply_to_request_http1x(&mut request);
        Ok(request)
    }

    /// One attempt, credentials included, within the attempt timeout.
    async fn send(&self, body: bytes::Bytes) -> Result<Answer> {
        let attempt = async {
            let mut request = self.signed(body).await?;
            // A connection that answered a 5xx is closed rather than reused, as the SDK does,
            // so that the retry goes on a new one.
            let connection = hyper_util::client::legacy::connect::capture_connection(&mut request);
            let connections = self.connections.get_or_init(crate::sdk::connections);
            let response = connections
                .request(request)
                .await
                .map_err(|e| Error::Bus(format!("PutEvents not sent: {e}")))?;
            if response.status().is_server_error()
                && let Some(connected) = connection.connection_metadata().as_ref()
            {
                connected.poison();
            }
            let (head, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| Error::Bus(format!("PutEvents answer cut short: {e}")))?;
            Ok(Answer {
                status: head.status,
                headers: head.headers,
                body: body.to_bytes(),
            })
        };
        tokio::time::timeout(crate::sdk::ATTEMPT_TIMEOUT, attempt)
            .await
            .map_err(|_| Error::Bus("PutEvents not answered within the attempt timeout".into()))?
    }
}

/// What one attempt brought back.
struct Answer {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: bytes::Bytes,
}

impl Answer {
    /// A refused request as an error with its code and reason, read as the SDK
    /// reads `awsJson1_1` errors: the code from `x-amzn-ErrorType`, else the body's `code`,
    /// else its `__type`, without namespace or URL.
    fn refusal(&self) -> Error {
        let body: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&self.body).unwrap_or_default();
        let text = |key: &str| body.get(key).and_then(serde_json::Value::as_str);
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        let code = header("x-amzn-errortype")
            .or(text("code"))
            .or(text("__type"))
            .map(|code| code.split(':').next().unwrap_or_default())
            .map(|code| code.rsplit('#').next().unwrap_or_default())
            .unwrap_or("no error code");
        let message = ["message", "Message", "errorMessage"]
            .into_iter()
            .find_map(text)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        Error::BusRefused {
            code: code.to_string(),
            reason: format!(
                "{message} (PutEvents answered {}, request {})",
                self.status,
                header("x-amzn-requestid").unwrap_or("without id")
            ),
        }
    }
}

/// The trace of the Lambda invocation being handled, which the runtime sets for each one.
fn lambda_trace_id() -> Option<String> {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME")?;
    std::env::var("_X_AMZN_TRACE_ID").ok()
}

/// The endpoint an SDK client built from `config` would send to.
fn endpoint(config: &SdkConfig) -> Result<String> {
    let key = ServiceConfigKey::builder()
        .service_id("EventBridge")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .map_err(|e| Error::Config(e.to_string()))?;
    let url = match config.get_origin("endpoint_url").is_client_config() {
        true => config.endpoint_url().map(str::to_string),
        false => config
            .service_config()
            .and_then(|service| service.load_config(key))
            .or_else(|| config.endpoint_url().map(str::to_string)),
    };
    let params = Params::builder()
        .region(config.region().map(ToString::to_string).unwrap_or_default())
        .use_fips(config.use_fips().unwrap_or_default())
        .use_dual_stack(config.use_dual_stack().unwrap_or_default())
        .set_endpoint(url)
        .build()
        .map_err(|e| Error::Config(format!("EventBridge endpoint: {e}")))?;
    let resolved =
        futures::FutureExt::now_or_never(DefaultResolver::new().resolve_endpoint(&params))
            .ok_or_else(|| {
                Error::Config("EventBridge endpoint rules did not answer at once".into())
            })?
            .map_err(|e| Error::Config(format!("EventBridge endpoint: {e}")))?;
    Ok(resolved.url().to_string())
}

/// The configuration's credentials, fetched again only shortly before they expire: the
/// SDK's own cache sits in its orchestrator, which this port does not use. Credentials that
/// cannot be refreshed are used for as long as they are valid.
struct CachedCredentials {
    provider: SharedCredentialsProvider,
    current: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
}

impl CachedCredentials {
    async fn get(&self) -> Result<Credentials> {
        let mut current = self.current.lock().await;
        let now = SystemTime::now();
        if let Some((credentials, refresh_at)) = current.as_ref()
            && *refresh_at > now
        {
            return Ok(credentials.clone());
        }
        match self.provider.provide_credentials().await {
            Ok(credentials) => {
                *current = Some((credentials.clone(), refresh_at(&credentials, now)));
                Ok(credentials)
            }
            Err(error) => match current.as_ref() {
                Some((credentials, _)) if credentials.expiry().is_none_or(|e| e > now) => {
                    tracing::warn!(%error, "credentials not refreshed; the current ones still hold");
                    Ok(credentials.clone())
                }
                _ => Err(Error::Config(format!(
                    "no credentials for EventBridge: {error}"
                ))),
            },
        }
    }
}

/// When credentials fetched at `now` are fetched again: [`REFRESH_BEFORE_EXPIRY`] before
/// they expire, but not before half their remaining life, so that short-lived credentials
/// are not fetched for every request.
fn refresh_at(credentials: &Credentials, now: SystemTime) -> SystemTime {
    let Some(expiry) = credentials.expiry() else {
        return now + Duration::from_secs(365 * 24 * 3600);
    };
    let remaining = expiry.duration_since(now).unwrap_or_default();
    now + remaining
        .saturating_sub(REFRESH_BEFORE_EXPIRY)
        .max(remaining / 2)
}

/// A `PutEvents` request as its JSON body (`awsJson1_1`). serde_json writes it, escaping
/// each detail in runs.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsBody<'a> {
    entries: Vec<EntryBody<'a>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct EntryBody<'a> {
    event_bus_name: &'a str,
    source: &'a str,
    detail_type: &'a str,
    detail: &'a str,
    /// Seconds since the epoch, as the protocol writes a timestamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<f64>,
}

impl PutEventsBody<'_> {
    /// The body, written into a buffer sized for it up front. A buffer grown as it is
    /// written (to about 16 KB, 10 times) copies each byte about once more.
    fn to_json(&self) -> Result<Vec<u8>> {
        let size: usize = (self.entries.iter())
            .map(|e| e.detail.len() * 5 / 4 + e.source.len() + e.detail_type.len() + 128)
            .sum();
        let mut body = Vec::with_capacity(size);
        serde_json::to_writer(&mut body, self)?;
        Ok(body)
    }
}

impl<'a> EntryBody<'a> {
    fn of(entry: &'a BusEntry, bus: &'a str) -> Self {
        EntryBody {
            event_bus_name: bus,
            source: &entry.source,
            detail_type: &entry.detail_type,
            detail: &entry.detail,
            time: DateTime::from_str(&entry.time, Format::DateTime)
                .ok()
                .map(|t| t.as_secs_f64()),
        }
    }
}

/// What `PutEvents` answers: one result per entry, in order.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutEventsAnswer {
    #[serde(default)]
    entries: Vec<EntryResult>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryResult {
    error_code: Option<String>,
    error_message: Option<String>,
}

#[async_trait]
impl Bus for EventBridgeBus {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<Vec<Result<(), EntryFailure>>> {
        let body = PutEventsBody {
            entries: entries
                .iter()
                .map(|e| EntryBody::of(e, &self.name))
                .collect(),
        };
        let answer = self.send(body.to_json()?.into()).await?;
        if !answer.status.is_success() {
            return Err(answer.refusal());
        }
        let results = serde_json::from_slice::<PutEventsAnswer>(&answer.body)
            .map_err(|e| Error::Bus(format!("PutEvents answer not understood: {e}")))?
            .entries;
        if results.len() != entries.len() {
            return Err(Error::Bus(format!(
                "{} results for {} entries",
                results.len(),
                entries.len()
            )));
        }
        Ok(results
            .into_iter()
            .map(|r| match r.error_code {
                None => Ok(()),
                Some(code) => Err(EntryFailure {
                    code,
                    message: r.error_message.unwrap_or_default(),
                }),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sigv4::http_request::SignableBody;
    use std::collections::HashMap;
    use tokio::sync::mpsc;

    #[test]
    fn a_body_is_the_json_of_its_entries() {
        let entry = |detail: &str| BusEntry {
            source: "bulkhead.orders".into(),
            detail_type: "Order\"Placed".into(),
            time: "2026-11-22T10:00:00.250Z".into(),
            detail: detail.into(),
        };
        let mut untimed = entry("{}");
        untimed.time = "yesterday".into();
        let entries = [entry(r#"{"a":"\"\n"}"#), untimed];
        let body = PutEventsBody {
            entries: entries.iter().map(|e| EntryBody::of(e, "bus")).collect(),
        };
        let body = body.to_json().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"Entries": [
                {"EventBusName": "bus", "Source": "bulkhead.orders", "DetailType": "Order\"Placed",
                 "Detail": r#"{"a":"\"\n"}"#, "Time": 1_795_341_600.25},
                {"EventBusName": "bus", "Source": "bulkhead.orders", "DetailType": "Order\"Placed",
                 "Detail": "{}"},
            ]})
        );
    }

    /// A request as the test server received it.
    struct Received {
        method: String,
        path: String,
        headers: HashMap<String, String>,
        body: bytes::Bytes,
    }

    /// A server on 127.0.0.1 that answers every request `status` with `headers` and
    /// `answer`, and hands over each request it received.
    async fn server(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        answer: &'static str,
    ) -> (String, mpsc::UnboundedReceiver<Received>) {
        let (sender, received) = mpsc::unbounded_channel();
        let handler = move |request: axum::extract::Request| {
            let sender = sender.clone();
            async move {
                let (parts, body) = request.into_parts();
                let received = Received {
                    method: parts.method.to_string(),
                    path: parts.uri.to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                        .collect(),
                    body: body.collect().await.unwrap().to_bytes(),
                };
                sender.send(received).unwrap();
                let mut answer = axum::response::IntoResponse::into_response(answer);
                *answer.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                for (name, value) in headers {
                    answer.headers_mut().insert(*name, value.parse().unwrap());
                }
                answer
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, received)
    }

    fn config(variables: &[(&str, &str)]) -> SdkConfig {
        let mut all = vec![
            ("AWS_REGION", "eu-west-3"),
            ("AWS_ACCESS_KEY_ID", "AKIDROLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "session-token-1"),
        ];
        all.extend_from_slice(variables);
        let variables = all
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        crate::sdk::from_variables(variables).unwrap()
    }

    fn entry(detail: &str) -> BusEntry {
        BusEntry {
            source: "bulkhead.orders".into(),
            detail_type: "OrderPlaced".into(),
            time: "2026-12-05T10:00:00.250Z".into(),
            detail: detail.into(),
        }
    }

    /// The signature of a received request, computed again as EventBridge does: from the
    /// headers it names and the body that arrived, with the caller's secret.
    fn signature_of(received: &Received) -> (String, String) {
        let authorization = &received.headers["authorization"];
        let field = |name: &str| {
            authorization
                .split([' ', ','])
                .find_map(|part| part.strip_prefix(name))
                .unwrap()
                .to_string()
        };
        let signed_headers = field("SignedHeaders=");
        let date = &received.headers["x-amz-date"];
        let rfc3339 = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &date[0..4],
            &date[4..6],
            &date[6..8],
            &date[9..11],
            &date[11..13],
            &date[13..15]
        );
        let time = DateTime::from_str(&rfc3339, Format::DateTime).unwrap();
        let identity = Credentials::new(
            "AKIDROLE",
            "secret",
            Some("session-token-1".into()),
            None,
            "t",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name("events")
            .time(SystemTime::try_from(time).unwrap())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers: Vec<(&str, &str)> = signed_headers
            .split(';')
            .filter(|name| !["x-amz-date", "x-amz-security-token"].contains(name))
            .map(|name| (name, received.headers[name].as_str()))
            .collect();
        let uri = format!("http://{}{}", received.headers["host"], received.path);
        let request = SignableRequest::new(
            &received.method,
            uri,
            headers.into_iter(),
            SignableBody::Bytes(&received.body),
        )
        .unwrap();
        let (_, signature) = sign(request, &params).unwrap().into_parts();
        (field("Signature="), signature)
    }

    #[tokio::test]
    async fn put_events_is_signed_as_eventbridge_checks_it_and_each_entry_gets_its_result() {
        let answer = r#"{"FailedEntryCount":1,"Entries":[{"EventId":"e-1"},
            {"ErrorCode":"ThrottlingException","ErrorMessage":"slow down"}]}"#;
        let (url, mut received) = server(200, &[], answer).await;
        let bus = EventBridgeBus::new(&config(&[("AWS_ENDPOINT_URL", &url)]), "the-bus").unwrap();

        let outcomes = bus
            .put_events(&[entry(r#"{"id":"a"}"#), entry(r#"{"id":"b \"quoted\""}"#)])
            .await
            .unwrap();
        assert!(outcomes[0].is_ok());
        let failure = outcomes[1].as_ref().unwrap_err();
        assert_eq!(
            (failure.code.as_str(), failure.message.as_str()),
            ("ThrottlingException", "slow down")
        );

        let request = received.recv().await.unwrap();
        assert_eq!(request.headers["x-amz-target"], "AWSEvents.PutEvents");
        assert_eq!(request.headers["x-amz-security-token"], "session-token-1");
        assert!(
            request.headers["authorization"].contains("/eu-west-3/events/aws4_request"),
            "{}",
            request.headers["authorization"]
        );
        for signed in ["content-type", "host", "x-amz-target"] {
            assert!(
                request.headers["authorization"].contains(signed),
                "{signed} unsigned"
            );
        }
        let (sent, expected) = signature_of(&request);
        assert_eq!(sent, expected, "the signature does not match what arrived");

        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let first = &body["Entries"][0];
        assert_eq!(first["EventBusName"], "the-bus");
        assert_eq!(first["DetailType"], "OrderPlaced");
        assert_eq!(first["Time"], 1_796_464_800.25);
        assert_eq!(body["Entries"][1]["Detail"], r#"{"id":"b \"quoted\""}"#);
    }

    async fn refusal(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        answer: &'static str,
    ) -> String {
        let (url, _received) = server(status, headers, answer).await;
        let bus = EventBridgeBus::new(&config(&[("AWS_ENDPOINT_URL", &url)]), "the-bus").unwrap();
        bus.put_events(&[entry("{}")])
            .await
            .unwrap_err()
            .to_string()
    }

    #[tokio::test]
    async fn a_refused_request_is_an_error_that_names_the_code_and_the_reason() {
        let error = refusal(
            400,
            &[("x-amzn-requestid", "r-1")],
            r#"{"__type":"com.amazonaws.events#ResourceNotFoundException",
                "message":"Event bus the-bus does not exist."}"#,
        )
        .await;
        assert_eq!(
            error,
            "bus: refused: ResourceNotFoundException: Event bus the-bus does not exist. \
             (PutEvents answered 400 Bad Request, request r-1)"
        );
        // The header's code comes first, without its URL; `Message` is read too.
        let error = refusal(
            400,
            &[(
                "x-amzn-errortype",
                "ThrottlingException:http://internal.amazon.com/coral/",
            )],
            r#"{"__type":"OtherException","Message":"Rate exceeded"}"#,
        )
        .await;
        assert!(
            error.starts_with("bus: refused: ThrottlingException: Rate exceeded ("),
            "{error}"
        );
        let error = refusal(503, &[], "Service Unavailable").await;
        assert_eq!(
            error,
            "bus: refused: no error code: Service Unavailable \
             (PutEvents answered 503 Service Unavailable, request without id)"
        );
    }

    /// Credentials that expire a second after they are given, and then none at all.
    #[derive(Debug, Default)]
    struct OnceThenFailing(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl ProvideCredentials for OnceThenFailing {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            use aws_credential_types::provider::{error::CredentialsError, future};
            let expiry = SystemTime::now() + Duration::from_secs(1);
            future::ProvideCredentials::ready(
                match self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                    0 => Ok(Credentials::new("a", "b", None, Some(expiry), "test")),
                    _ => Err(CredentialsError::not_loaded("gone")),
                },
            )
        }
    }

    #[tokio::test]
    async fn credentials_are_fetched_again_before_they_expire_and_kept_while_they_hold() {
        let provider = OnceThenFailing::default();
        let fetches = provider.0.clone();
        let cache = CachedCredentials {
            provider: SharedCredentialsProvider::new(provider),
            current: tokio::sync::Mutex::new(None),
        };
        cache.get().await.unwrap();
        cache.get().await.unwrap();
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Past half their life they are fetched again; the fetch fails, and they still hold.
        tokio::time::sleep(Duration::from_millis(600)).await;
        cache.get().await.unwrap();
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let error = cache.get().await.unwrap_err().to_string();
        assert!(error.contains("no credentials"), "{error}");

        let now = SystemTime::now();
        let hour = Credentials::new("a", "b", None, Some(now + Duration::from_secs(3600)), "t");
        assert_eq!(refresh_at(&hour, now), now + Duration::from_secs(3300));
    }

    #[tokio::test]
    async fn the_endpoint_is_the_one_an_sdk_client_would_use() {
        assert_eq!(
            endpoint(&config(&[])).unwrap(),
            "https://events.eu-west-3.amazonaws.com"
        );
        let both = config(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", "http://127.0.0.1:2"),
        ]);
        assert_eq!(endpoint(&both).unwrap(), "http://127.0.0.1:2");
        let general = config(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]);
        assert_eq!(endpoint(&general).unwrap(), "http://127.0.0.1:1");
    }
}
