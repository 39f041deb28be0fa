//! The reference the functions' cold start is compared with (`make bench`, issue 18): a
//! hello world as lambda_runtime's own `basic-lambda` example writes it (the default tracing
//! subscriber, a multi-thread tokio runtime, an echo handler), built with the workspace's
//! release profile. Not deployed.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(event.payload)
    }))
    .await
}
