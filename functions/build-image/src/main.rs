//! Glue: tracing, the store named by `FERRY_STORE` (s3://bucket/prefix), the EBS and
//! EC2 clients (endpoint from `AWS_ENDPOINT_URL`), and the Lambda runtime loop.

use ferry_fn_build_image::handler::{self, BuildImageRequest, Clients};
use ferry_store::{Backend, Repository};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    ferry_fn::init_tracing();
    let store = std::env::var("FERRY_STORE").map_err(|_| "FERRY_STORE is not set")?;
    let settings = ferry_store::aws::AwsSettings::default();
    let cfg = ferry_store::aws::sdk_config(&settings).await;
    let clients = Clients {
        ebs: aws_sdk_ebs::Client::new(&cfg),
        ec2: aws_sdk_ec2::Client::new(&cfg),
    };
    let repo = Repository::open(Backend::open(&store, &settings).await?).await?;
    run(service_fn(|e: LambdaEvent<BuildImageRequest>| {
        let (clients, repo) = (&clients, &repo);
        async move { handler::handle(clients, repo, e.payload).await }
    }))
    .await
}
