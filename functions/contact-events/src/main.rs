//! contact-events: campaign, inbound-message and captured-details events (and WhatsApp
//! webhooks through its function URL) keep the contact book current. Wiring only; the
//! logic is `contacts::events`.

use contacts::aws::{
    load_sdk_config, DynamoTable, S3Objects, SecretsManagerSecrets, SqsWebhookQueue,
};
use contacts::config::Config;
use contacts::events::{EventService, Invocation};
use lambda_runtime::{service_fn, Error, LambdaEvent};

mod handler;

// One thread: an invocation is a few requests in sequence, and a multi-threaded runtime
// spent most of the function's CPU waking its idle threads for each of them (perf,
// make bench-webhooks). Parsing a recipients file still goes to the blocking pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = load_sdk_config().await;
    let secrets = SecretsManagerSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let config = Config::from_env_and(&secrets).await?;
    let objects = S3Objects::new(aws_sdk_s3::Client::new(&sdk));
    let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), config.table.clone());
    let webhooks = SqsWebhookQueue::new(
        SqsWebhookQueue::client(&sdk),
        config.webhook_queue_url.clone(),
        config.webhook_dead_letter_queue_url.clone(),
    );
    // One table holds contacts, account settings, the processed-event ledger and the
    // accounts' histories of imports.
    let service = &EventService {
        objects: &objects,
        contacts: &table,
        settings: &table,
        ledger: &table,
        webhooks: &webhooks,
        imports: &table,
        config: &config,
    };
    // The payload is any of several shapes until the envelope tells which.
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handler::handle(service, Invocation::from_payload(event.payload)).await
        },
    ))
    .await
}
