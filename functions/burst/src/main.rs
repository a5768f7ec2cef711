//! Glue: tracing, the settings the template gives (fail fast), the clients (built once,
//! endpoint from `AWS_ENDPOINT_URL`), and the Lambda runtime loop.

use ferry_fn_burst::{handler, Burst, Settings};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry_fn::init_tracing();
    let settings = Settings::from_env()?;
    let cfg = ferry_aws::clients::sdk_config(&Default::default()).await;
    let burst = Burst::new(&cfg, settings);
    run(service_fn(|e: LambdaEvent<serde_json::Value>| {
        let burst = &burst;
        async move { handler::handle(burst, e.payload).await }
    }))
    .await
}
