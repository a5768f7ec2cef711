//! Glue: tracing, the EC2 client (built once, endpoint from `AWS_ENDPOINT_URL`), and
//! the Lambda runtime loop.

use ferry_core::steps::InstanceRequest;
use ferry_fn_launch::handler;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry_fn::init_tracing();
    let cfg = ferry_aws::clients::sdk_config(&Default::default()).await;
    let ec2 = ferry_aws::clients::ec2(&cfg);
    run(service_fn(|e: LambdaEvent<InstanceRequest>| {
        let ec2 = &ec2;
        async move { handler::handle(ec2, e.payload).await }
    }))
    .await
}
