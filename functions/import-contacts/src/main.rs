//! import-contacts: S3 upload events in, contacts and reports out.
//! Wiring only; the import itself is `contacts::import`.

use aws_lambda_events::s3::S3Event;
use contacts::aws::{load_sdk_config, DynamoTable, LambdaContinuation, S3Objects};
use contacts::config::Config;
use contacts::import::Importer;
use lambda_runtime::{service_fn, Error, LambdaEvent};

mod handler;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = load_sdk_config().await;
    let objects = S3Objects::new(aws_sdk_s3::Client::new(&sdk));
    let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), config.table.clone());
    // Lambda names the running function; locally (cargo lambda watch) it is the binary's.
    let function_name =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "import-contacts".into());
    let continuation = LambdaContinuation::new(aws_sdk_lambda::Client::new(&sdk), function_name);
    let (config, objects, table, continuation) = (&config, &objects, &table, &continuation);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        let deadline = handler::earliest(
            handler::deadline_instant(event.context.deadline),
            config.time_limit.map(|limit| std::time::Instant::now() + limit),
        );
        tracing::info!(remaining_ms = ?deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()).as_millis()), "invocation deadline");
        let importer = Importer {
            objects,
            contacts: table,
            jobs: table,
            settings: table,
            config,
            deadline,
        };
        // Boxed: the import's future is deep, and inline it overflows the layout query.
        Box::pin(handler::handle(&importer, continuation, event.payload)).await
    }))
    .await
}
