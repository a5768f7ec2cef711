//! Glue: tracing, the settings the template gives (fail fast), the clients (built once,
//! endpoint from `AWS_ENDPOINT_URL`), and the Lambda runtime loop.

use ferry_fn_dr::{handler, Dr, Settings};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry_fn::init_tracing();
    let settings = Settings::from_env()?;
    let cfg = ferry_aws::clients::sdk_config(&Default::default()).await;
    let dr = Dr::new(&cfg, settings);
    run(service_fn(|e: LambdaEvent<serde_json::Value>| {
        let dr = &dr;
        async move { handler::handle(dr, e.payload).await }
    }))
    .await
}
