//! import-contacts: S3 upload events in, contacts and reports out.
//! Wiring only: configuration, tracing and clients; the front door is
//! `contacts::import::handler`.

use aws_lambda_events::s3::S3Event;
use contacts::aws::{
    load_sdk_config, DynamoTable, EventBridgeImportEvents, LambdaContinuation, S3Objects,
    SecretsManagerSecrets,
};
use contacts::config::Config;
use contacts::import::handler::{self, HandlerError};
use contacts::import::Importer;
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};

/// An import that failed, reported to the runtime with its type (and every cause).
#[derive(Debug)]
struct Failure(HandlerError);

impl From<Failure> for Diagnostic {
    fn from(Failure(e): Failure) -> Self {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Diagnostic {
            error_type: "ImportInterrupted".into(),
            error_message: message,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = load_sdk_config().await;
    let secrets = SecretsManagerSecrets::new(aws_sdk_secretsmanager::Client::new(&sdk));
    let config = Config::from_env_and(&secrets).await?;
    let objects = S3Objects::new(aws_sdk_s3::Client::new(&sdk));
    let table = DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), config.table.clone());
    // Lambda names the running function; locally (cargo lambda watch) it is the binary's.
    let function_name =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "import-contacts".into());
    let continuation = LambdaContinuation::new(aws_sdk_lambda::Client::new(&sdk), function_name);
    let events = EventBridgeImportEvents::new(
        aws_sdk_eventbridge::Client::new(&sdk),
        config.event_bus.clone(),
    );
    let (config, objects, table, continuation, events) =
        (&config, &objects, &table, &continuation, &events);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        let importer = Importer {
            objects,
            contacts: table,
            jobs: table,
            settings: table,
            events,
            config,
            deadline: handler::deadline(event.context.deadline, config.time_limit),
        };
        // Boxed: the import's future is deep, and inline it overflows the layout query.
        let handled = Box::pin(handler::handle(&importer, continuation, event.payload)).await;
        handled.map_err(Failure)
    }))
    .await
}
