#[tokio::main]
async fn main() -> Result<(), bulkhead::lambda::Error> {
    bulkhead::telemetry::init();
    let host = bulkhead::host::AwsHost::from_env()?.with_eventbridge();
    bulkhead::lambda::run_trigger(catalog::trigger(&host)?).await
}
