//! Glue: tracing, the store named by `FERRY_STORE` (s3://bucket/prefix, opened on the
//! first invocation), the records table named by `FERRY_TABLE`, the clients (endpoint
//! from `AWS_ENDPOINT_URL`), and the Lambda runtime loop.

use ferry_core::steps::build_image::BuildImageRequest;
use ferry_fn_build_image::cloud::{Cloud, DEFAULT_RANGE_BLOCKS};
use ferry_fn_build_image::handler;
use ferry_fn_build_image::store::LazyStore;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry_fn::init_tracing();
    let store = std::env::var("FERRY_STORE").map_err(|_| "FERRY_STORE is not set")?;
    let table = std::env::var("FERRY_TABLE").ok().filter(|t| !t.is_empty());
    let range_blocks = match std::env::var("FERRY_IMAGE_RANGE_BLOCKS") {
        Ok(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("FERRY_IMAGE_RANGE_BLOCKS={v} is not a positive number"))?,
        Err(_) => DEFAULT_RANGE_BLOCKS,
    };
    let cfg = ferry_aws::clients::sdk_config(&Default::default()).await;
    let cloud = Cloud::new(&cfg, table, range_blocks);
    let store = LazyStore::new(store, cfg.clone());
    run(service_fn(|e: LambdaEvent<BuildImageRequest>| {
        let (cloud, store) = (&cloud, &store);
        // Boxed: the steps' futures nest past the compiler's type-depth limit.
        Box::pin(handler::invoke(cloud, store, e.payload))
    }))
    .await
}
