//! AWS adapters of the ports: each implements one or more traits of [`crate::ports`] on
//! an SDK client, and nothing else depends on the SDK.
//!
//! - [`S3Objects`] ([`ObjectStore`](crate::ports::ObjectStore)): uploads in, reports out
//!   (`s3.rs`).
//! - [`DynamoTable`]: the one table of DESIGN section 9, with contacts, import jobs,
//!   account settings and processed events (`dynamodb/`, one file per port, and
//!   `dynamodb/item.rs` for reading attributes strictly).
//! - [`LambdaContinuation`] ([`Continuation`](crate::ports::Continuation)): an import
//!   continuing itself in a fresh invocation (`lambda.rs`).
//! - [`SecretsManagerSecrets`] ([`SecretStore`](crate::ports::SecretStore)): the
//!   deployment's secrets, read at start (`secrets.rs`).
//! - [`SqsWebhookQueue`] ([`WebhookQueue`](crate::ports::WebhookQueue)): signed WhatsApp
//!   webhooks stored before they are answered, and their dead letters (`sqs.rs`).
//! - [`EventBridgeImportEvents`] ([`ImportEvents`](crate::ports::ImportEvents)): an
//!   import's completion event (`eventbridge.rs`).
//!
//! The functions' `main` builds the SDK configuration once ([`load_sdk_config`]), a client
//! per service, and these adapters around them.

mod dynamodb;
mod eventbridge;
mod lambda;
mod s3;
mod secrets;
pub mod sqs;

pub use dynamodb::DynamoTable;
pub use eventbridge::EventBridgeImportEvents;
pub use lambda::LambdaContinuation;
pub use s3::S3Objects;
pub use secrets::SecretsManagerSecrets;
pub use sqs::SqsWebhookQueue;

use crate::ports::StoreError;

/// Builds the shared SDK configuration once: region, credentials and, locally,
/// `AWS_ENDPOINT_URL` all come from the environment.
/// Throttling (`ThrottlingException`, `ProvisionedThroughputExceededException`), 5xx
/// and dropped connections are retried with exponential backoff and jitter, up to
/// ten attempts, before a row's write fails the invocation (which then resumes).
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(10)
                // DynamoDB answers in milliseconds: back off from 50 ms, not 1 s.
                .with_initial_backoff(std::time::Duration::from_millis(50)),
        )
        .load()
        .await
}

/// Wraps a failed SDK call as [`StoreError::Service`], naming what was being done and
/// keeping the SDK's error whole as the source.
fn service<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Service {
        operation,
        source: Box::new(e),
    }
}
