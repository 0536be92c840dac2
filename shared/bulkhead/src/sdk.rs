//! The AWS SDK's configuration, the same for every client a process builds.
//!
//! A Lambda function takes its configuration from the environment Lambda gives it
//! ([`from_lambda_env`]). Other processes (the devstack against AWS, tests, benchmarks) use
//! `aws-config`'s whole chain of sources ([`defaults`]). Both use one HTTP client (`https`)
//! and one timeout.

use crate::{Error, Result};
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::sdk_config::{
    SharedCredentialsProvider, SharedHttpClient, StalledStreamProtectionConfig, TimeoutConfig,
};
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use std::collections::HashMap;
use std::time::Duration;

pub(crate) mod https;

/// How long one attempt of a request may take, its answer read, before it is given up and
/// tried again.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a connection may take to open: the SDK's own default.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The HTTP client every Bulkhead process uses: HTTP/1.1 over rustls on ring ([`https`]),
/// trusting the system's roots. The SDK's default client is not compiled in, so a client built
/// from another loader has no HTTP client and fails its first request.
fn https_client() -> SharedHttpClient {
    https::Https::client(https::system_roots)
}

/// A pool of connections for a port that signs and sends its requests itself
/// ([`crate::bus::aws`]): the same client, connect timeout and trust roots as the SDK's.
pub(crate) fn connections() -> https::Pool {
    https::pool(https::system_roots(), Some(CONNECT_TIMEOUT))
}

/// A hung request is cut by [`ATTEMPT_TIMEOUT`], not by the SDK's stalled-stream protection,
/// which watches the throughput of every body it sends and reads: for requests and answers of
/// a few kilobytes that watch cost a quarter of a listener's CPU (README: Performance).
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// `aws_config::defaults`, with Bulkhead's HTTPS client and timeouts.
pub fn defaults() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(timeouts())
}

/// The configuration of a Lambda function, from the variables Lambda sets: `AWS_REGION`,
/// and the execution role's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
/// `AWS_SESSION_TOKEN`. `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>` (for example
/// `AWS_ENDPOINT_URL_DYNAMODB`) point the clients elsewhere, as they do for `aws-config`.
///
/// A process's environment does not change while it runs, so these credentials are the
/// ones `aws-config`'s chain would find first, and for as long. Leaving `aws-config` out of
/// the functions leaves out the rest of that chain, STS and profile files: a smaller
/// bootstrap and a shorter init (README: Performance).
pub fn from_lambda_env() -> Result<SdkConfig> {
    let variables = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(_, value)| !value.is_empty());
    from_variables(variables.collect())
}

pub(crate) fn from_variables(variables: HashMap<String, String>) -> Result<SdkConfig> {
    let var = |name: &str| variables.get(name).cloned();
    let required =
        |name: &str| var(name).ok_or_else(|| Error::Config(format!("{name} is not set")));
    let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"));
    let credentials = aws_credential_types::Credentials::new(
        required("AWS_ACCESS_KEY_ID")?,
        required("AWS_SECRET_ACCESS_KEY")?,
        var("AWS_SESSION_TOKEN"),
        None,
        "Lambda environment",
    );
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            region.ok_or_else(|| Error::Config("AWS_REGION is not set".into()))?,
        ))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(https_client())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(timeouts());
    config.set_endpoint_url(var("AWS_ENDPOINT_URL"));
    Ok(config.service_config(ServiceVariables(variables)).build())
}

/// The environment as a service's client reads its own settings from it: the SDK asks for
/// `AWS_ENDPOINT_URL` of `DynamoDB`, which is `AWS_ENDPOINT_URL_DYNAMODB`.
#[derive(Debug)]
struct ServiceVariables(HashMap<String, String>);

impl LoadServiceConfig for ServiceVariables {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_ascii_uppercase().replace(' ', "_");
        self.0.get(&format!("{}_{service}", key.env())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use aws_config::{BehaviorVersion, ConfigLoader, Region};
    use aws_sdk_dynamodb::config::Credentials;
    use std::io::Read;
    use std::sync::mpsc;
    use std::time::Duration;

    async fn list_tables(loader: ConfigLoader, endpoint: &str) -> String {
        let config = loader
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        let outcome = client.list_tables().send().await;
        format!(
            "{:?}",
            outcome.expect_err("nothing answers at the endpoint")
        )
    }

    #[tokio::test]
    async fn clients_open_tls_with_the_one_configured_client_and_no_other() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("https://{}", listener.local_addr().unwrap());
        let (sender, first_bytes) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut first = [0u8; 2];
            socket.read_exact(&mut first).unwrap();
            sender.send(first).unwrap();
        });
        let error = list_tables(super::defaults(), &endpoint).await;
        let first = first_bytes
            .recv_timeout(Duration::from_secs(10))
            .expect("a connection within 10 s");
        assert_eq!(
            first,
            [0x16, 0x03],
            "a TLS handshake record opens the connection"
        );
        assert!(!error.contains("No HTTP client"), "{error}");

        // The SDK's own default client (rustls on aws-lc) is not compiled in.
        let bare = aws_config::defaults(BehaviorVersion::latest());
        let error = list_tables(bare, "https://127.0.0.1:9").await;
        assert!(error.contains("No HTTP client"), "{error}");
    }

    #[tokio::test]
    async fn a_request_that_gets_no_answer_is_given_up_after_the_attempt_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        // Accepts, reads the request, and never answers.
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            while socket.read(&mut request).is_ok_and(|n| n > 0) {}
        });
        let started = std::time::Instant::now();
        let error = list_tables(super::defaults(), &endpoint).await;
        let took = started.elapsed();
        assert!(error.contains("Timeout"), "{error}");
        assert!(
            took >= super::ATTEMPT_TIMEOUT
                && took < super::ATTEMPT_TIMEOUT + Duration::from_secs(3),
            "gave up after {took:?}"
        );
    }

    /// A server on 127.0.0.1 that answers every request `200 {}` and hands over each
    /// request's head.
    fn answering_server() -> (String, mpsc::Receiver<String>) {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (sender, heads) = mpsc::channel();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let mut socket = socket.unwrap();
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buffer).unwrap();
                    request.extend_from_slice(&buffer[..n]);
                }
                let head = String::from_utf8_lossy(&request).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.trim().parse().unwrap());
                let body_read = request.len() - (head.find("\r\n\r\n").unwrap() + 4);
                let mut rest = vec![0u8; length.saturating_sub(body_read)];
                socket.read_exact(&mut rest).unwrap();
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 2\r\n\r\n{}")
                    .unwrap();
                sender.send(head).unwrap();
            }
        });
        (url, heads)
    }

    fn lambda_variables(pairs: &[(&str, &str)]) -> crate::Result<aws_types::SdkConfig> {
        super::from_variables(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_lambda_config_signs_as_the_role_for_its_region_and_honours_endpoint_variables() {
        let (elsewhere, elsewhere_heads) = answering_server();
        let (dynamodb, dynamodb_heads) = answering_server();
        let config = lambda_variables(&[
            ("AWS_REGION", "eu-west-3"),
            ("AWS_ACCESS_KEY_ID", "AKIDROLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "session-token-1"),
            ("AWS_ENDPOINT_URL", &elsewhere),
            ("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb),
        ])
        .unwrap();
        let wait = Duration::from_secs(10);
        let holds = |head: &str, parts: &[&str]| {
            for part in parts {
                assert!(head.contains(part), "{part:?} is not in {head}");
            }
        };

        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        dynamodb.list_tables().send().await.unwrap();
        let head = dynamodb_heads.recv_timeout(wait).unwrap();
        holds(
            &head,
            &[
                "x-amz-target: dynamodb_20120810.listtables",
                "credential=akidrole/",
                "/eu-west-3/dynamodb/aws4_request",
                "x-amz-security-token: session-token-1",
            ],
        );

        let eventbridge = aws_sdk_eventbridge::Client::new(&config);
        eventbridge.list_event_buses().send().await.unwrap();
        let head = elsewhere_heads.recv_timeout(wait).unwrap();
        holds(
            &head,
            &[
                "x-amz-target: awsevents.listeventbuses",
                "/eu-west-3/events/aws4_request",
            ],
        );
        assert!(
            dynamodb_heads.try_recv().is_err(),
            "EventBridge went to DynamoDB's endpoint"
        );
    }

    #[test]
    fn a_lambda_config_names_the_variable_it_misses() {
        let complete = [
            ("AWS_REGION", "eu-west-3"),
            ("AWS_ACCESS_KEY_ID", "AKIDROLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ];
        for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            let without: Vec<_> = complete
                .iter()
                .copied()
                .filter(|(n, _)| *n != missing)
                .collect();
            let error = lambda_variables(&without).unwrap_err().to_string();
            assert_eq!(error, format!("configuration: {missing} is not set"));
        }
        let config = lambda_variables(&[
            ("AWS_DEFAULT_REGION", "ap-south-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDROLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ])
        .unwrap();
        assert_eq!(config.region().unwrap().as_ref(), "ap-south-1");
        assert_eq!(config.endpoint_url(), None);
    }
}
