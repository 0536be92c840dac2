#[tokio::main]
async fn main() -> Result<(), bulkhead::lambda::Error> {
    bulkhead::telemetry::init();
    let host = bulkhead::host::AwsHost::from_env()?;
    bulkhead::lambda::run_trigger(catalog::trigger(&host)?).await
}
