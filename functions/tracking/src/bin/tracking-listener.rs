#[tokio::main]
async fn main() -> Result<(), bulkhead::lambda::Error> {
    bulkhead::telemetry::init();
    let host = bulkhead::host::AwsHost::from_env()?;
    bulkhead::lambda::run_listener(tracking::listener(&host)?).await
}
