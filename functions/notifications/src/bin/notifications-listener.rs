#[tokio::main]
async fn main() -> Result<(), bulkhead::lambda::Error> {
    bulkhead::telemetry::init();
    let host = bulkhead::host::AwsHost::from_env().await;
    let mailer = std::sync::Arc::new(bulkhead::mail::ses::SesMailer::from_env().await?);
    bulkhead::lambda::run_listener(notifications::listener_with(&host, mailer)?).await
}
