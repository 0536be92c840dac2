#[tokio::main]
async fn main() -> Result<(), bulkhead::lambda::Error> {
    bulkhead::telemetry::init();
    let host = bulkhead::host::AwsHost::from_env()?;
    let mailer = std::sync::Arc::new(bulkhead::mail::ses::SesMailer::from_env()?);
    bulkhead::lambda::run_listener(notifications::listener_with(&host, mailer)?).await
}
