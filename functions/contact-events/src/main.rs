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

// A webhook batch is mostly short-lived allocations (the SDK's attribute maps, the
// statements' parameters, the contacts read and written): with glibc's allocator,
// malloc and free were about 30% of the function's CPU (perf, make bench-webhooks).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Invocations one instance takes at once, where the platform allows only one: Lambda
/// Managed Instances set `AWS_LAMBDA_MAX_CONCURRENCY` themselves (and win), `cargo
/// lambda watch` sets it to 1, so `make up` sets this instead.
const LOCAL_CONCURRENCY: &str = "CONTACT_EVENTS_MAX_CONCURRENCY";

// One thread: an invocation is a few requests in sequence, and a multi-threaded runtime
// spent most of the function's CPU waking its idle threads for each of them (perf,
// make bench-webhooks). Parsing a recipients file still goes to the blocking pool.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Beside the start-up, so neither it nor the first webhook batch waits for it.
    std::thread::spawn(contacts::domain::phone::load_metadata);
    let platform = std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").ok();
    let platform_says = platform.and_then(|v| v.parse::<u32>().ok()).unwrap_or(1);
    if let (Ok(limit), true) = (std::env::var(LOCAL_CONCURRENCY), platform_says <= 1) {
        // Read by the runtime below, before anything else runs.
        std::env::set_var("AWS_LAMBDA_MAX_CONCURRENCY", limit);
    }
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
    // Everything lives as long as the process: invocations running at once share it.
    let (objects, table, webhooks, config) = (
        &*Box::leak(Box::new(objects)),
        &*Box::leak(Box::new(table)),
        &*Box::leak(Box::new(webhooks)),
        &*Box::leak(Box::new(config)),
    );
    // One table holds contacts, account settings, the processed-event ledger and the
    // accounts' histories of imports.
    let service = &*Box::leak(Box::new(EventService {
        objects,
        contacts: table,
        settings: table,
        ledger: table,
        webhooks,
        imports: table,
        config,
    }));
    // The payload is any of several shapes until the envelope tells which, so it is
    // handed over as text: an SQS batch is then read once, into its records. With
    // AWS_LAMBDA_MAX_CONCURRENCY above 1 an instance takes that many invocations at
    // once (webhook POSTs then share SQS requests); otherwise one at a time.
    lambda_runtime::run_concurrent(service_fn(
        move |event: LambdaEvent<Box<serde_json::value::RawValue>>| async move {
            handler::handle(service, Invocation::from_json(event.payload.get())).await
        },
    ))
    .await
}
