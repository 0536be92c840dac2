//! The AWS SDK's configuration, the same for every client a process builds.

use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use std::time::Duration;

/// How long one attempt of a request may take, its answer read, before it is given up and
/// tried again.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// `aws_config::defaults`, with the HTTPS client every Bulkhead process uses: rustls on
/// ring. The SDK's default (rustls on aws-lc) is not compiled in, so a client built from
/// another loader has no HTTP client and fails its first request.
///
/// A hung request is cut by [`ATTEMPT_TIMEOUT`], not by the SDK's stalled-stream
/// protection, which watches the throughput of every body it sends and reads: for requests
/// and answers of a few kilobytes that watch cost a quarter of a listener's CPU (README:
/// Performance).
pub fn defaults() -> ConfigLoader {
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https)
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
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
}
