//! [`Continuation`] through Lambda: an import that runs short of time hands the records
//! still to import to a fresh invocation of its own function.

use aws_lambda_events::s3::S3Event;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use super::service;
use crate::ports::{Continuation, StoreError};

/// [`Continuation`]: an asynchronous (`InvocationType=Event`) invoke of a function,
/// normally the running function itself (`AWS_LAMBDA_FUNCTION_NAME`).
#[derive(Clone, Debug)]
pub struct LambdaContinuation {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaContinuation {
    /// Invokes `function_name` through `client`.
    pub fn new(client: aws_sdk_lambda::Client, function_name: String) -> Self {
        LambdaContinuation {
            client,
            function_name,
        }
    }
}

impl Continuation for LambdaContinuation {
    async fn continue_with(&self, event: &S3Event) -> Result<(), StoreError> {
        let payload = serde_json::to_vec(event).map_err(service("lambda:Invoke"))?;
        self.client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(service("lambda:Invoke"))?;
        Ok(())
    }
}
