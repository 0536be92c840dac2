#[tokio::main]
async fn main() -> Result<(), bulkhead::lambda::Error> {
    bulkhead::telemetry::init();
    let host = bulkhead::host::AwsHost::from_env().await;
    bulkhead::lambda::run_listener(notifications::listener(&host)?).await
}
