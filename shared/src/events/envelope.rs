//! Invocation shapes (DESIGN sections 10 and 13): a bare event (direct invoke), an
//! EventBridge envelope (`detail` holds the event, `detail-type` its type when the
//! detail has none), an SQS batch (each record's body is a bare event or an EventBridge
//! envelope, answered with `batchItemFailures`) and an HTTP request event of a Function
//! URL or API Gateway (Meta calling the function; [`super::http`]).
//!
//! This is the boundary: the function hands over the payload as JSON it has not looked
//! at. An HTTP request is recognised first, by fields only it has
//! ([`super::http::is_http_request`]); then serde decides among the other shapes by
//! trying each in turn.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde::{Deserialize, Serialize};

use super::answer::Answer;
use super::error::{invalid, undecodable, EventError};
use super::http::{is_http_request, HttpRequest, HttpResponse, RequestError};
use super::meta::{Webhook, WHATSAPP_OBJECT};
use super::payload::{decode, Event};
use crate::domain::stored_webhook as sqs;

/// One invocation's events, decoded.
// One value per invocation, moved once: boxing the single event would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Invocation {
    /// A direct invoke or an EventBridge envelope: one event, whose error is the
    /// invocation's.
    Single(Result<Event, EventError>),
    /// An SQS batch: one event per record; the ones that fail are redelivered.
    Batch(Vec<Record>),
    /// An HTTP request (Meta's subscription check or a webhook), answered with a
    /// status; an error when its body cannot be read.
    Http(Result<HttpRequest, RequestError>),
}

/// One record of an SQS batch.
#[derive(Debug)]
pub struct Record {
    /// The SQS message id: the `itemIdentifier` when it fails.
    pub message_id: String,
    /// The event its body holds.
    pub event: Result<Event, EventError>,
    /// Set when the record is a webhook body contact-events itself stored (it carries
    /// the receiver's attributes): what giving it up needs.
    pub stored_webhook: Option<QueuedWebhook>,
}

/// A record of the webhook queue as it was received, for its dead letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedWebhook {
    /// The message body as queued.
    pub body: String,
    /// Its string message attributes.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// `ApproximateReceiveCount`: how many times it has been received, this time included.
    pub receive_count: u64,
}

impl Invocation {
    /// Decodes an invocation payload: an HTTP request when it has a `requestContext` and
    /// a method and none of the other shapes' fields, else an SQS batch when it has
    /// `Records` and every one is from `aws:sqs`, else an EventBridge envelope, else a
    /// bare event.
    pub fn from_payload(payload: serde_json::Value) -> Invocation {
        if is_http_request(&payload) {
            return Invocation::Http(HttpRequest::from_event(&payload));
        }
        // A batch is read from the payload it is, its strings moved, not copied: a
        // batch of webhook bodies is most of what this function reads.
        if is_sqs_batch(&payload) {
            return Invocation::batch(serde_path_to_error::deserialize(payload));
        }
        match Carrier::deserialize(payload) {
            Ok(carrier) => Invocation::Single(carrier.event()),
            // `Carrier::Bare` takes any JSON value: not reached.
            Err(e) => Invocation::Single(Err(invalid("(event)", e.to_string()))),
        }
    }

    /// Decodes an invocation payload from its JSON text, as [`Invocation::from_payload`]
    /// does; an SQS batch is read from the text itself (one pass, no intermediate
    /// value), which is most of what this function reads.
    pub fn from_json(json: &str) -> Invocation {
        if let Some(records) = only_sqs_records(json) {
            return Invocation::records(records);
        }
        if !is_http_request(&mut serde_json::Deserializer::from_str(json))
            && is_sqs_batch(&mut serde_json::Deserializer::from_str(json))
        {
            let text = &mut serde_json::Deserializer::from_str(json);
            return Invocation::batch(serde_path_to_error::deserialize(text));
        }
        match serde_json::from_str(json) {
            Ok(payload) => Invocation::from_payload(payload),
            Err(e) => Invocation::Single(Err(invalid(
                "(event)",
                format!("is not JSON ({})", json_problem(&e)),
            ))),
        }
    }

    /// An SQS batch as decoded: its records, or the error that names the path.
    fn batch(
        decoded: Result<SqsEvent, serde_path_to_error::Error<serde_json::Error>>,
    ) -> Invocation {
        match decoded {
            Ok(batch) => Invocation::records(batch.records),
            Err(e) => Invocation::Single(Err(undecodable(e))),
        }
    }

    /// An SQS batch of these records, each decoded on its own.
    fn records(records: Vec<SqsMessage>) -> Invocation {
        Invocation::Batch(records.into_iter().map(Record::from).collect())
    }

    /// How many events it carries (a batch counts its records; an HTTP request is one).
    pub fn event_count(&self) -> u64 {
        match self {
            Invocation::Single(_) | Invocation::Http(_) => 1,
            Invocation::Batch(records) => records.len() as u64,
        }
    }
}

/// What an invocation answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// The answer to a single event.
    Event(Answer),
    /// A batch: `batchItemFailures` names exactly the records that failed.
    Batch(SqsBatchResponse),
    /// An HTTP request's answer, in the Lambda proxy shape (`statusCode`, `headers`,
    /// `body`).
    Http(HttpResponse),
}

impl Reply {
    /// How many events failed (an HTTP request answered other than 2xx counts one).
    pub fn failures(&self) -> u64 {
        match self {
            Reply::Event(_) => 0,
            Reply::Batch(response) => response.batch_item_failures.len() as u64,
            Reply::Http(response) => u64::from(!response.is_success()),
        }
    }
}

/// The shapes one event arrives in, tried in order.
#[derive(Deserialize)]
#[serde(untagged)]
enum Carrier {
    Routed(Box<EventBridgeEvent>),
    Bare(serde_json::Value),
}

impl Carrier {
    fn event(self) -> Result<Event, EventError> {
        match self {
            Carrier::Routed(envelope) => decode(&envelope.detail, Some(&envelope.detail_type)),
            Carrier::Bare(event) => decode(&event, None),
        }
    }
}

/// Whether `payload` (a parsed value or JSON text) is an SQS batch: a non-empty
/// `Records` list whose records all come from SQS (an event that merely has a
/// `Records` field is not a batch). Only the records' `eventSource`s are read.
fn is_sqs_batch<'de, D: serde::Deserializer<'de>>(payload: D) -> bool {
    #[derive(Deserialize)]
    struct Payload<'a> {
        #[serde(rename = "Records", borrow)]
        records: Vec<Source<'a>>,
    }
    #[derive(Deserialize)]
    struct Source<'a> {
        #[serde(rename = "eventSource", borrow)]
        event_source: Option<std::borrow::Cow<'a, str>>,
    }
    Payload::deserialize(payload)
        .is_ok_and(|payload| from_sqs(payload.records.iter().map(|r| r.event_source.as_deref())))
}

/// Whether records with these `eventSource`s are an SQS batch: at least one, and every
/// one from `aws:sqs`.
fn from_sqs<'a>(mut sources: impl ExactSizeIterator<Item = Option<&'a str>>) -> bool {
    sources.len() > 0 && sources.all(|source| source == Some("aws:sqs"))
}

/// The records of a payload that is an SQS batch and nothing else (`Records`, every
/// one from `aws:sqs`, and no other field), as Lambda's poller sends it: read in one
/// pass, where the shapes' checks would each read the whole text first (a batch of
/// webhook bodies is most of what this function reads). `None` for anything else, which
/// the general path decides (and whose errors it names).
fn only_sqs_records(json: &str) -> Option<Vec<SqsMessage>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct OnlyRecords {
        #[serde(rename = "Records")]
        records: Vec<SqsMessage>,
    }
    let OnlyRecords { records } = serde_json::from_str(json).ok()?;
    from_sqs(records.iter().map(|r| r.event_source.as_deref())).then_some(records)
}

impl From<SqsMessage> for Record {
    fn from(message: SqsMessage) -> Record {
        let body = message.body.unwrap_or_default();
        let attributes: std::collections::BTreeMap<String, String> = message
            .message_attributes
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.string_value?)))
            .collect();
        if attributes.get(sqs::SIGNATURE).map(String::as_str) == Some(sqs::VERIFIED) {
            let event = stored_webhook_event(&body, attributes.get(sqs::BODY_ENCODING));
            let receive_count = message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            return Record {
                message_id: message.message_id.unwrap_or_default(),
                event,
                stored_webhook: Some(QueuedWebhook {
                    body,
                    attributes,
                    receive_count,
                }),
            };
        }
        // Any JSON is a carrier (`Bare` takes every value): an error is a syntax error.
        let event = match serde_json::from_str::<Carrier>(&body) {
            Ok(carrier) => carrier.event(),
            Err(e) => Err(invalid("body", format!("is not JSON ({e})"))),
        };
        Record {
            message_id: message.message_id.unwrap_or_default(),
            event,
            stored_webhook: None,
        }
    }
}

/// The event of a webhook body the receiver stored: it must be JSON and Meta's
/// WhatsApp webhook (the receiver only checked its signature).
fn stored_webhook_event(body: &str, encoding: Option<&String>) -> Result<Event, EventError> {
    let raw = sqs::raw_body(body, encoding.map(String::as_str))
        .ok_or_else(|| invalid("body", "is marked base64 but is not"))?;
    // Read straight from the text; a body that is not a webhook is read again as a
    // value, for the error the checks below give.
    let text = &mut serde_json::Deserializer::from_slice(&raw);
    if let Ok(webhook) = serde_path_to_error::deserialize::<_, Webhook>(&mut *text) {
        if text.end().is_ok() && webhook.object.get() == Some(WHATSAPP_OBJECT) {
            return Ok(Event::Webhook(Box::new(webhook)));
        }
    }
    let json: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| invalid("body", format!("is not JSON ({})", json_problem(&e))))?;
    if json.get("object").and_then(|object| object.as_str()) != Some(WHATSAPP_OBJECT) {
        return Err(invalid(
            "object",
            format!("must be {WHATSAPP_OBJECT:?}: the body is not a WhatsApp webhook"),
        ));
    }
    // Read from the value it is (strings moved, not copied), as `decode` would read it.
    serde_path_to_error::deserialize(json)
        .map(|webhook| Event::Webhook(Box::new(webhook)))
        .map_err(undecodable)
}

/// What kind of JSON error `e` is, for a message that must not quote the body.
fn json_problem(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "it ends early",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::{json, Value};

    fn inbound() -> Value {
        json!({"type": "message.inbound", "account_id": "acme", "channel": "sms", "message_id": "m1", "from": "+447911123456"})
    }

    /// The payload decoded from its value and from its text, which must agree.
    fn both(payload: Value) -> Invocation {
        let from_text = Invocation::from_json(&payload.to_string());
        let from_value = Invocation::from_payload(payload);
        assert_eq!(format!("{from_text:?}"), format!("{from_value:?}"));
        from_value
    }

    fn single(payload: Value) -> Result<Event, EventError> {
        match both(payload) {
            Invocation::Single(event) => event,
            other => panic!("not a single event: {other:?}"),
        }
    }

    fn field(result: Result<Event, EventError>) -> String {
        match result {
            Err(EventError::InvalidField { field, .. }) => field,
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn a_bare_event_is_one_event() {
        let invocation = both(inbound());
        assert_eq!(invocation.event_count(), 1);
        assert!(matches!(
            invocation,
            Invocation::Single(Ok(Event::MessageInbound(_)))
        ));
    }

    #[test]
    fn an_eventbridge_detail_takes_its_type_from_detail_type() {
        let mut detail = inbound();
        detail.as_object_mut().expect("object").remove("type");
        let envelope = json!({"version": "0", "detail-type": "message.inbound", "source": "inbox", "detail": detail});
        assert!(matches!(single(envelope), Ok(Event::MessageInbound(_))));
        let typed =
            json!({"detail-type": "something.else", "source": "inbox", "detail": inbound()});
        assert!(matches!(single(typed), Ok(Event::MessageInbound(_))));
        let bad =
            json!({"detail-type": "message.inbound", "source": "inbox", "detail": {"from": 5}});
        assert_eq!(field(single(bad)), "from");
    }

    #[test]
    fn an_sqs_batch_decodes_each_record_on_its_own() {
        let routed = json!({"detail-type": "message.inbound", "source": "inbox", "detail": {"from": "+447911123456"}});
        let batch = json!({"Records": [
            {"messageId": "a", "eventSource": "aws:sqs", "body": inbound().to_string()},
            {"messageId": "b", "eventSource": "aws:sqs", "body": "not json"},
            {"messageId": "c", "eventSource": "aws:sqs", "body": routed.to_string()},
            {"messageId": "d", "eventSource": "aws:sqs"},
            {"messageId": "e", "eventSource": "aws:sqs", "body": "{\"type\": \"nope\"}"},
        ]});
        let invocation = both(batch);
        assert_eq!(invocation.event_count(), 5);
        let Invocation::Batch(records) = invocation else {
            panic!("not a batch")
        };
        let ids: Vec<&str> = records.iter().map(|r| r.message_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e"]);
        assert!(matches!(records[0].event, Ok(Event::MessageInbound(_))));
        assert!(matches!(records[2].event, Ok(Event::MessageInbound(_))));
        let mut records = records.into_iter().map(|r| r.event);
        let _ = records.next();
        assert_eq!(field(records.next().expect("b")), "body");
        let _ = records.next();
        assert_eq!(field(records.next().expect("d")), "body");
        assert_eq!(field(records.next().expect("e")), "type");
    }

    #[test]
    fn a_batch_with_other_fields_beside_its_records_is_read_as_one_without() {
        let record =
            json!({"messageId": "a", "eventSource": "aws:sqs", "body": inbound().to_string()});
        for payload in [
            json!({"Records": [record]}),
            json!({"Records": [record], "other": 1}),
        ] {
            assert!(matches!(both(payload), Invocation::Batch(records) if records.len() == 1));
        }
        // The one-pass read takes only `Records`: anything more goes the general way,
        // and a request beside them decodes as from its value (`both`).
        let mut request = function_url("POST");
        request["Records"] = json!([record]);
        both(request);
    }

    #[test]
    fn records_not_all_from_sqs_are_not_a_batch() {
        for payload in [
            json!({"Records": []}),
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}, {"eventSource": "aws:s3"}]}),
        ] {
            assert_eq!(field(single(payload)), "type");
        }
    }

    #[test]
    fn a_batch_whose_record_has_the_wrong_shape_is_named_by_its_path_never_its_value() {
        let payload = json!({"Records": [
            {"messageId": "a", "eventSource": "aws:sqs", "body": "{}"},
            {"messageId": "b", "eventSource": "aws:sqs", "body": 447911123456_u64},
        ]});
        let Err(EventError::InvalidField { field, problem }) = single(payload) else {
            panic!("not an invalid field");
        };
        assert_eq!(field, "Records[1].body");
        assert!(!problem.contains("447911123456"), "{problem}");
    }

    #[test]
    fn a_stored_webhook_is_read_from_its_text_as_from_its_value() {
        let webhook = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"field": "messages", "value": {"metadata": {"phone_number_id": "2"},
             "messages": [{"from": "447911123456", "id": "wamid.1", "timestamp": "1700000000", "type": "text"}, 5]}}]}]});
        let stored = |body: String, encoding: Option<&str>| {
            let mut attributes =
                json!({sqs::SIGNATURE: {"stringValue": sqs::VERIFIED, "dataType": "String"}});
            if let Some(encoding) = encoding {
                attributes[sqs::BODY_ENCODING] =
                    json!({"stringValue": encoding, "dataType": "String"});
            }
            json!({"messageId": "m", "eventSource": "aws:sqs", "body": body, "messageAttributes": attributes,
                   "attributes": {"ApproximateReceiveCount": "2"}})
        };
        let other = json!({"object": "page", "entry": []});
        let not_an_object = json!({"object": 5, "entry": "x"});
        let records = vec![
            stored(webhook.to_string(), None),
            stored(format!("{webhook} trailing"), None),
            stored(other.to_string(), None),
            stored(not_an_object.to_string(), None),
            stored("{\"object\": ".into(), None),
            stored(
                base64::engine::general_purpose::STANDARD.encode(webhook.to_string()),
                Some("base64"),
            ),
            stored("%%%".into(), Some("base64")),
        ];
        let Invocation::Batch(records) = both(json!({"Records": records})) else {
            panic!("not a batch")
        };
        assert_eq!(
            records[0].stored_webhook.as_ref().map(|w| w.receive_count),
            Some(2)
        );
        let events: Vec<_> = records.into_iter().map(|r| r.event).collect();
        let [good, trailing, other, not_an_object, cut, base64, not_base64] =
            <[_; 7]>::try_from(events).expect("seven records");
        assert!(matches!(good, Ok(Event::Webhook(_))));
        assert_eq!(field(trailing), "body");
        assert_eq!(field(other), "object");
        assert_eq!(field(not_an_object), "object");
        assert_eq!(field(cut), "body");
        assert!(matches!(base64, Ok(Event::Webhook(_))));
        assert_eq!(field(not_base64), "body");
    }

    #[test]
    fn a_payload_that_is_not_json_is_one_error() {
        assert!(matches!(
            Invocation::from_json("{\"Records\": ["),
            Invocation::Single(Err(EventError::InvalidField { .. }))
        ));
    }

    fn function_url(method: &str) -> Value {
        json!({"version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
               "headers": {"x-hub-signature-256": "sha256=00"},
               "requestContext": {"http": {"method": method}}, "body": "{}", "isBase64Encoded": false})
    }

    #[test]
    fn http_requests_of_either_format_are_http() {
        let rest = json!({"httpMethod": "GET", "headers": null, "queryStringParameters": {"hub.mode": "subscribe"},
                          "requestContext": {"stage": "prod"}, "body": null});
        for payload in [function_url("POST"), function_url("GET"), rest] {
            let invocation = both(payload);
            assert_eq!(invocation.event_count(), 1);
            assert!(
                matches!(invocation, Invocation::Http(Ok(_))),
                "{invocation:?}"
            );
        }
        // A body that cannot be read is still an HTTP request (answered 400), never
        // decoded as an event.
        let mut broken = function_url("POST");
        broken["isBase64Encoded"] = json!(true);
        broken["body"] = json!("%%%");
        assert!(matches!(
            both(broken),
            Invocation::Http(Err(RequestError::BodyNotBase64))
        ));
    }

    #[test]
    fn events_batches_and_envelopes_are_never_http() {
        let webhook = json!({"object": "whatsapp_business_account", "entry": []});
        let bare = [
            inbound(),
            webhook.clone(),
            // HTTP-looking fields do not make an event a request.
            json!({"type": "message.inbound", "httpMethod": "POST", "requestContext": {}}),
            json!({"object": "whatsapp_business_account", "entry": [],
                   "requestContext": {"http": {"method": "POST"}}}),
        ];
        for payload in bare {
            assert!(
                matches!(both(payload.clone()), Invocation::Single(_)),
                "{payload}"
            );
        }
        let routed = json!({"detail-type": "message.inbound", "source": "inbox", "detail": inbound(),
                            "requestContext": {"http": {"method": "POST"}}});
        assert!(matches!(single(routed), Ok(Event::MessageInbound(_))));
        // An SQS record whose body is an HTTP event is a record, decoded as an event.
        let batch = json!({"Records": [
            {"messageId": "a", "eventSource": "aws:sqs", "body": function_url("POST").to_string()},
            {"messageId": "b", "eventSource": "aws:sqs", "body": webhook.to_string()},
        ]});
        let Invocation::Batch(records) = both(batch) else {
            panic!("not a batch")
        };
        assert_eq!(records.len(), 2);
        assert!(records[0].event.is_err());
        // Meta's body queued by a webhook receiver is an event (DESIGN section 13).
        assert!(matches!(records[1].event, Ok(Event::Webhook(_))));
    }

    #[test]
    fn an_http_reply_is_the_lambda_proxy_shape() {
        let reply = Reply::Http(HttpResponse::text(200, "1158201444"));
        assert_eq!(reply.failures(), 0);
        assert_eq!(
            serde_json::to_value(&reply).expect("serialises"),
            json!({"statusCode": 200, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": "1158201444",
                   "isBase64Encoded": false, "cookies": []})
        );
        assert_eq!(Reply::Http(HttpResponse::error(401, "no")).failures(), 1);
    }

    #[test]
    fn a_batch_reply_is_the_documented_shape() {
        let mut response = SqsBatchResponse::default();
        response.add_failure("b");
        let reply = Reply::Batch(response);
        assert_eq!(reply.failures(), 1);
        assert_eq!(
            serde_json::to_value(&reply).expect("serialises"),
            json!({"batchItemFailures": [{"itemIdentifier": "b"}]})
        );
    }
}
