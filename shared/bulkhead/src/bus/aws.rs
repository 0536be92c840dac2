//! The bus port on EventBridge: each `PutEvents` request written, signed (`aws-sigv4`, the
//! SDK's own signer) and sent (the SDK's HTTP client, [`crate::sdk`]) here.
//!
//! The SDK's generated client ran 16 interceptor stages, merged its configuration layers and
//! built type-erased inputs and outputs for every request: about a sixth of a trigger's CPU,
//! at 90 requests a batch (README: Performance). What the trigger needs of it is small: one
//! operation, retried by the trigger itself ([`crate::trigger`]), whose endpoint is resolved
//! once, by the SDK's rules, and whose credentials are those of the SDK's configuration.

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

    /// One signed attempt: the answer's status and body.
    async fn send(&self, body: bytes::Bytes) -> Result<(http::StatusCode, bytes::Bytes)> {
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
        let mut request = request
            .body(SdkBody::from(body))
            .map_err(|e| Error::Bus(e.to_string()))?;
        signature.apply_to_request_http1x(&mut request);
        let connections = self.connections.get_or_init(crate::sdk::connections);
        let attempt = async {
            let response = connections
                .request(request)
                .await
                .map_err(|e| Error::Bus(format!("PutEvents not sent: {e}")))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| Error::Bus(format!("PutEvents answer cut short: {e}")))?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(crate::sdk::ATTEMPT_TIMEOUT, attempt)
            .await
            .map_err(|_| Error::Bus("PutEvents not answered within the attempt timeout".into()))?
    }
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
/// SDK's own cache sits in its orchestrator, which this port does not use.
struct CachedCredentials {
    provider: SharedCredentialsProvider,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    async fn get(&self) -> Result<Credentials> {
        let mut current = self.current.lock().await;
        let fresh = |c: &Credentials| {
            c.expiry()
                .is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_BEFORE_EXPIRY)
        };
        if let Some(credentials) = current.as_ref().filter(|c| fresh(c)) {
            return Ok(credentials.clone());
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Error::Config(format!("no credentials for EventBridge: {e}")))?;
        *current = Some(credentials.clone());
        Ok(credentials)
    }
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

/// What the service answers when it refuses the whole request.
#[derive(serde::Deserialize)]
struct Refusal {
    #[serde(rename = "__type", default)]
    kind: String,
    #[serde(alias = "Message", default)]
    message: String,
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
        let (status, answer) = self.send(serde_json::to_vec(&body)?.into()).await?;
        if !status.is_success() {
            let refusal: Refusal = serde_json::from_slice(&answer).unwrap_or(Refusal {
                kind: String::new(),
                message: String::from_utf8_lossy(&answer).into_owned(),
            });
            // `__type` may carry the shape's namespace: `com.amazonaws.events#Code`.
            let code = refusal.kind.rsplit('#').next().unwrap_or_default();
            return Err(Error::Bus(format!(
                "PutEvents refused ({status}): {code}: {}",
                refusal.message
            )));
        }
        let results = serde_json::from_slice::<PutEventsAnswer>(&answer)
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

    /// A request as the test server received it.
    struct Received {
        headers: HashMap<String, String>,
        body: bytes::Bytes,
    }

    /// A server on 127.0.0.1 that answers every request `status` with `answer`, and hands
    /// over each request it received.
    async fn server(
        status: u16,
        answer: &'static str,
    ) -> (String, mpsc::UnboundedReceiver<Received>) {
        let (sender, received) = mpsc::unbounded_channel();
        let handler = move |request: axum::extract::Request| {
            let sender = sender.clone();
            async move {
                let (parts, body) = request.into_parts();
                let headers = parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                    .collect();
                let body = body.collect().await.unwrap().to_bytes();
                sender.send(Received { headers, body }).unwrap();
                (axum::http::StatusCode::from_u16(status).unwrap(), answer)
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
        let uri = format!("http://{}/", received.headers["host"]);
        let request = SignableRequest::new(
            "POST",
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
        let (url, mut received) = server(200, answer).await;
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

    #[tokio::test]
    async fn a_refused_request_is_an_error_that_names_the_code_and_the_reason() {
        let answer = r#"{"__type":"com.amazonaws.events#ResourceNotFoundException",
            "message":"Event bus the-bus does not exist."}"#;
        let (url, _received) = server(400, answer).await;
        let bus = EventBridgeBus::new(&config(&[("AWS_ENDPOINT_URL", &url)]), "the-bus").unwrap();
        let error = bus
            .put_events(&[entry("{}")])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("400")
                && error.contains(": ResourceNotFoundException: Event bus the-bus does not exist."),
            "{error}"
        );
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
