//! The HTTP face of contact-events (DESIGN section 13): Meta's WhatsApp Cloud API calls
//! the function directly, through a Lambda Function URL (or an API Gateway HTTP API, or
//! a REST API's proxy integration). This module recognises such an invocation, reads
//! it into an [`HttpRequest`] and answers it with an [`HttpResponse`]:
//!
//! - `GET` is Meta's subscription check: `hub.mode=subscribe` and a `hub.verify_token`
//!   equal to `WHATSAPP_VERIFY_TOKEN` answer `hub.challenge`; anything else is 403.
//! - `POST` is a webhook: its raw body must be signed with `WHATSAPP_APP_SECRET`
//!   ([`crate::domain::webhook_signature`]), else 401 and nothing is parsed, let alone
//!   written. A signed body is stored as it came (the webhook queue, with the time it
//!   was received) and answered 200 at once, a duplicate too (Meta retries anything
//!   else for days); nothing else happens in the request. 500 only when it could not be
//!   stored, so that Meta retries. Its items are applied from the queue, each on its own
//!   ([`super::whatsapp_webhook`]).
//! - Any other method is 405.
//!
//! Two payload formats carry a request:
//! - 2.0 (Function URL, HTTP API): `version`, `requestContext.http.method`, `headers`
//!   (lower-case names), `rawQueryString`, `queryStringParameters` (absent when there is
//!   no query), `body`, `isBase64Encoded`.
//! - 1.0 (REST API, HTTP API with payload 1.0): `httpMethod`, `requestContext`,
//!   `headers` (names as sent, or null), `queryStringParameters` (or null), `body`
//!   (null when empty), `isBase64Encoded`.
//!
//! Logs name the method, the status and why a request was refused; never a secret, a
//! signature, a query value or a byte of the body.

use std::collections::BTreeMap;

use base64::Engine as _;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use std::future::Future;

use crate::config::Config;
use crate::domain::secret::Secret;
use crate::domain::stored_webhook;
use crate::domain::upload::decode_event_key;
use crate::domain::webhook_signature::{self, SIGNATURE_HEADER};
use crate::ports::{StoreError, StoredWebhook};

pub use super::meta::WHATSAPP_OBJECT;

/// An HTTP request event as the function reads it, in either payload format (see the
/// module): only the fields it needs, each read when it has the type AWS gives it and
/// taken as absent otherwise (emulators and test consoles send nulls and stray fields).
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestEvent {
    /// Fields of the other invocation shapes: an SQS batch (`Records`), an EventBridge
    /// envelope (`detail`, `detail-type`), a bare event (`type`) or a bare Meta webhook
    /// (`object`, `entry`). A payload with any of them set is never an HTTP request,
    /// whatever else it carries; no HTTP event of AWS has them at its top level.
    /// cargo-lambda's function URL sends `"type": null` (an authorizer field): only a
    /// field with a value marks another shape.
    #[serde(rename = "Records")]
    records: Option<IgnoredAny>,
    detail: Option<IgnoredAny>,
    #[serde(rename = "detail-type")]
    detail_type: Option<IgnoredAny>,
    #[serde(rename = "type")]
    kind: Option<IgnoredAny>,
    object: Option<IgnoredAny>,
    entry: Option<IgnoredAny>,
    request_context: Option<Loose<Object<RequestContext>>>,
    /// Format 1.0's method.
    http_method: Option<Loose<String>>,
    headers: Option<Loose<Pairs>>,
    query_string_parameters: Option<Loose<Pairs>>,
    raw_query_string: Option<Loose<String>>,
    is_base64_encoded: Option<Loose<bool>>,
    body: Option<Loose<String>>,
}

#[derive(Deserialize)]
struct RequestContext {
    http: Option<Loose<Object<HttpContext>>>,
}

#[derive(Deserialize)]
struct HttpContext {
    /// Format 2.0's method: when the key is there, whatever it holds is the method (a
    /// value that is no string makes no request).
    #[serde(default)]
    method: Slot<String>,
}

/// `T` read from a JSON object only: a derived struct would read an array too.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// A JSON object's entries in the order sent (a later header wins over an earlier one
/// of the same name in another case, as it does in the request).
struct Pairs(Vec<(String, Loose<String>)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

/// A field that may be missing, or there with a value of the type expected, or with
/// anything else (`null` included).
#[derive(Default)]
enum Slot<T> {
    #[default]
    Absent,
    Is(T),
    Not,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Slot<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Loose::<T>::deserialize(deserializer)? {
            Loose::Is(value) => Slot::Is(value),
            Loose::Not(_) => Slot::Not,
        })
    }
}

/// A field of the type expected, or anything else.
#[derive(Deserialize)]
#[serde(untagged)]
enum Loose<T> {
    Is(T),
    Not(IgnoredAny),
}

impl<T> Loose<T> {
    fn get(self) -> Option<T> {
        match self {
            Loose::Is(value) => Some(value),
            Loose::Not(_) => None,
        }
    }
}

/// The string values of a map field, in the order sent (others are left out).
fn strings(field: Option<Loose<Pairs>>) -> impl Iterator<Item = (String, String)> {
    let entries = field.and_then(Loose::get).map(|pairs| pairs.0);
    entries
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((name, value.get()?)))
}

impl RequestEvent {
    /// The method, when this is an HTTP request event: a `requestContext` object and a
    /// method (`requestContext.http.method` in format 2.0, `httpMethod` in 1.0), and
    /// none of the other shapes' fields.
    fn method(&mut self) -> Option<String> {
        let other_shape = [
            &self.records,
            &self.detail,
            &self.detail_type,
            &self.kind,
            &self.object,
            &self.entry,
        ];
        if other_shape.iter().any(|field| field.is_some()) {
            return None;
        }
        let Object(context) = self.request_context.take()?.get()?;
        let v2 = match context.http.and_then(Loose::get) {
            Some(Object(http)) => http.method,
            None => Slot::Absent,
        };
        match v2 {
            Slot::Is(method) => Some(method),
            Slot::Not => None,
            Slot::Absent => self.http_method.take()?.get(),
        }
    }
}

/// Whether an invocation payload is an HTTP request event (see [`RequestEvent`]).
pub fn is_http_request<'de, D: Deserializer<'de>>(payload: D) -> bool {
    Object::<RequestEvent>::deserialize(payload)
        .is_ok_and(|Object(mut event)| event.method().is_some())
}

/// One HTTP request, as the function needs it: the method, the headers (looked up
/// without regard to case), the query parameters and the body's raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Upper case.
    method: String,
    /// By lower-cased name.
    headers: BTreeMap<String, String>,
    /// Decoded names and values.
    query: BTreeMap<String, String>,
    /// Exactly the bytes sent: the signature covers them.
    body: Vec<u8>,
}

/// An HTTP request event whose body cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// `isBase64Encoded` is true and the body is not base64.
    #[error("the body is marked isBase64Encoded but is not base64")]
    BodyNotBase64,
    /// `body` is neither a string nor null.
    #[error("the body is not a string")]
    BodyNotText,
}

impl HttpRequest {
    /// A request from its parts: header names in any case, query parameters decoded.
    pub fn new<'a>(
        method: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        query: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: impl Into<Vec<u8>>,
    ) -> HttpRequest {
        HttpRequest {
            method: method.to_ascii_uppercase(),
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
                .collect(),
            query: query
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    /// Reads an HTTP request event (format 2.0 or 1.0; see the module). Call it on a
    /// payload [`is_http_request`] accepts: anything else reads as a request with no
    /// method, which is answered 405.
    pub fn from_event<'de, D: Deserializer<'de>>(event: D) -> Result<HttpRequest, RequestError> {
        let mut event = Object::<RequestEvent>::deserialize(event)
            .map_or_else(|_| RequestEvent::default(), |Object(event)| event);
        let method = event.method().unwrap_or_default();
        // 2.0 leaves queryStringParameters out when there is no query, and
        // rawQueryString holds the query as sent: read that when the map is missing.
        let query = match event.query_string_parameters {
            Some(Loose::Is(_)) => strings(event.query_string_parameters).collect(),
            _ => {
                let raw = event.raw_query_string.and_then(Loose::get);
                parse_query(raw.as_deref().unwrap_or_default())
            }
        };
        let base64 = event.is_base64_encoded.and_then(Loose::get) == Some(true);
        let body = match event.body {
            None => Vec::new(),
            Some(Loose::Is(text)) if base64 => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| RequestError::BodyNotBase64)?,
            Some(Loose::Is(text)) => text.into_bytes(),
            Some(Loose::Not(_)) => return Err(RequestError::BodyNotText),
        };
        Ok(HttpRequest {
            method: method.to_ascii_uppercase(),
            headers: strings(event.headers)
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
            query,
            body,
        })
    }

    /// The method, upper case.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The header `name`, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The query parameter `name` (decoded).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The body's raw bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// Names and sizes only: header and query values can be signatures and tokens, and
/// bodies hold personal data.
impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("query", &self.query.keys().collect::<Vec<_>>())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// A query string as sent (`a=1&b=x%20y`): form-urlencoded, like S3 event keys. A name
/// given twice keeps its first value.
fn parse_query(raw: &str) -> BTreeMap<String, String> {
    let mut query = BTreeMap::new();
    for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(decode_event_key(name))
            .or_insert_with(|| decode_event_key(value));
    }
    query
}

/// An answer in the Lambda proxy shape Function URLs and API Gateway take:
/// `{"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    /// The HTTP status.
    pub status_code: u16,
    /// Response headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The body, as text.
    pub body: String,
    /// Always false: bodies are text.
    pub is_base64_encoded: bool,
    /// Always empty. Function URLs read it as optional; cargo lambda watch requires it
    /// (its response type has no default for it) and answers 500 without it.
    pub cookies: Vec<String>,
}

impl HttpResponse {
    /// A `text/plain` answer.
    pub fn text(status_code: u16, body: impl Into<String>) -> HttpResponse {
        HttpResponse::with_type(status_code, "text/plain; charset=utf-8", body.into())
    }

    /// An `application/json` answer.
    pub fn json(status_code: u16, body: &impl Serialize) -> HttpResponse {
        // Cannot fail: the bodies are JSON values and plain structs.
        let text = serde_json::to_string(body).unwrap_or_default();
        HttpResponse::with_type(status_code, "application/json", text)
    }

    /// `{"error": message}`.
    pub fn error(status_code: u16, message: impl Into<String>) -> HttpResponse {
        HttpResponse::json(status_code, &json!({"error": message.into()}))
    }

    fn with_type(status_code: u16, content_type: &str, body: String) -> HttpResponse {
        HttpResponse {
            status_code,
            headers: BTreeMap::from([("content-type".to_string(), content_type.to_string())]),
            body,
            is_base64_encoded: false,
            cookies: Vec::new(),
        }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// Answers Meta's subscription check: the challenge when `hub.mode` is `subscribe` and
/// `hub.verify_token` is `token`; 403 otherwise, and always when no token is set.
pub fn verify_subscription(request: &HttpRequest, token: Option<&Secret>) -> HttpResponse {
    let forbidden = || HttpResponse::error(403, "verification failed");
    let Some(token) = token else {
        tracing::warn!("subscription check refused: the function has no WHATSAPP_VERIFY_TOKEN");
        return forbidden();
    };
    let subscribe = request.query("hub.mode") == Some("subscribe");
    let presented = token.matches(request.query("hub.verify_token").unwrap_or_default());
    if !(subscribe && presented) {
        tracing::warn!(subscribe, "subscription check refused");
        return forbidden();
    }
    HttpResponse::text(200, request.query("hub.challenge").unwrap_or_default())
}

/// Answers one HTTP request (see the module): never an error, always a status. A
/// webhook POST whose signature checks is handed to `store` with the time it was
/// received, and answered 200 once stored (500 when it could not be).
pub async fn answer<S, Fut>(
    config: &Config,
    request: Result<HttpRequest, RequestError>,
    store: S,
) -> HttpResponse
where
    S: FnOnce(StoredWebhook) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            tracing::warn!(error = %e, "HTTP request unreadable");
            return HttpResponse::error(400, e.to_string());
        }
    };
    let response = match request.method() {
        "GET" => verify_subscription(&request, config.whatsapp_verify_token.as_ref()),
        "POST" => match check_signature(config, &request).and_then(|()| storable(&request)) {
            Ok(()) => {
                stored(store(StoredWebhook {
                    received_at: chrono::Utc::now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    body: request.body,
                }))
                .await
            }
            Err(response) => response,
        },
        _ => {
            let mut response = HttpResponse::error(405, "only GET and POST are answered");
            response.headers.insert("allow".into(), "GET, POST".into());
            response
        }
    };
    // Meta's traffic is thousands of POSTs a second: what went well is not logged.
    if response.status_code == 200 {
        tracing::debug!(method = request.method, "HTTP request answered");
    } else {
        tracing::info!(
            method = request.method,
            status = response.status_code,
            "HTTP request answered"
        );
    }
    response
}

/// Whether a webhook POST is signed with the app secret (401 when not).
fn check_signature(config: &Config, request: &HttpRequest) -> Result<(), HttpResponse> {
    // The same answer whether the secret is missing or the signature wrong: the
    // caller learns nothing about the deployment. The log tells them apart.
    let unauthorized = || HttpResponse::error(401, "the request is not signed with the app secret");
    let Some(secret) = config.whatsapp_app_secret.as_ref() else {
        tracing::warn!("webhook refused: the function has no WHATSAPP_APP_SECRET");
        return Err(unauthorized());
    };
    let signature = request.header(SIGNATURE_HEADER);
    if let Err(e) = webhook_signature::verify(secret, signature, request.body()) {
        tracing::warn!(reason = %e, "webhook refused");
        return Err(unauthorized());
    }
    Ok(())
}

/// Whether a signed body can go on the queue: SQS takes no empty message and none
/// larger than its message size (256 KiB with the attributes, the smallest limit of the
/// queues the stack runs on). Meta's webhooks are a few kilobytes; either would fail to
/// store on every retry, so each is answered at once with what is wrong.
fn storable(request: &HttpRequest) -> Result<(), HttpResponse> {
    if request.body().is_empty() {
        tracing::warn!("webhook refused: empty body");
        return Err(HttpResponse::error(400, "the body is empty"));
    }
    let (message, _) = stored_webhook::message_body(request.body());
    if message.len() > stored_webhook::MAX_MESSAGE_BYTES {
        tracing::warn!(
            bytes = request.body().len(),
            "webhook refused: too large to queue"
        );
        return Err(HttpResponse::error(
            413,
            format!(
                "the body is larger than the {} bytes the webhook queue takes",
                stored_webhook::MAX_MESSAGE_BYTES
            ),
        ));
    }
    Ok(())
}

/// What a signed webhook answers Meta once its storing is done: 200 when the queue has
/// it (its items are applied from there, DESIGN section 13), 500 when it could not be
/// stored, so that Meta delivers it again later.
async fn stored(storing: impl Future<Output = Result<(), StoreError>>) -> HttpResponse {
    match storing.await {
        Ok(()) => HttpResponse::json(200, &json!({"status": "ok"})),
        Err(e) => {
            tracing::error!(error = %e, "webhook could not be stored; Meta will retry");
            HttpResponse::error(500, "the webhook could not be stored now; retry later")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventService;
    use crate::ports::memory::MemoryPorts;
    use hmac::{KeyInit, Mac};
    use serde_json::Value;

    const APP_SECRET: &str = "test-app-secret";
    const VERIFY_TOKEN: &str = "test-verify-token";

    fn config() -> Config {
        Config {
            whatsapp_app_secret: Secret::new(APP_SECRET),
            whatsapp_verify_token: Secret::new(VERIFY_TOKEN),
            ..Config::default()
        }
    }

    fn sign(body: &[u8]) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes())
            .expect("any key length");
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    async fn answer(config: &Config, ports: &MemoryPorts, request: HttpRequest) -> HttpResponse {
        let service = EventService {
            objects: &ports.objects,
            contacts: &ports.contacts,
            settings: &ports.settings,
            ledger: &ports.ledger,
            webhooks: &ports.webhooks,
            imports: &ports.jobs,
            config,
        };
        service.handle_http(Ok(request)).await
    }

    fn get(query: &[(&'static str, &'static str)]) -> HttpRequest {
        HttpRequest::new("GET", [], query.iter().copied(), Vec::new())
    }

    fn post(signature: Option<&str>, body: &[u8]) -> HttpRequest {
        HttpRequest::new(
            "POST",
            signature.map(|s| ("X-Hub-Signature-256", s)),
            [],
            body,
        )
    }

    /// The business number the test account owns.
    const PNID: &str = "106540352242922";

    /// In-memory ports where [`PNID`] is account `acme`'s.
    fn ports() -> MemoryPorts {
        let ports = MemoryPorts::default();
        ports.contacts.add_business_number(PNID, "acme");
        ports
    }

    /// A message from a new person, as Meta sends it: one contact saved. The HTTP path
    /// must do what the same body does bare.
    fn inbound_webhook() -> Vec<u8> {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": PNID},
            "contacts": [{"profile": {"name": "Eva"}, "wa_id": "447911123456"}],
            "messages": [{"from": "447911123456", "id": "wamid.1", "timestamp": "1764324000",
                          "type": "text", "text": {"body": "Hi"}}]}}]}]})
        .to_string()
        .into_bytes()
    }

    fn v2(method: &str, query: Option<&str>, body: Option<&str>, base64: bool) -> Value {
        json!({"version": "2.0", "routeKey": "$default", "rawPath": "/",
               "rawQueryString": query.unwrap_or_default(),
               "headers": {"content-type": "application/json", "x-hub-signature-256": "sha256=ab"},
               "requestContext": {"http": {"method": method, "path": "/"}, "stage": "$default"},
               "body": body, "isBase64Encoded": base64})
    }

    #[test]
    fn a_function_url_event_reads_method_headers_query_and_body() {
        let mut event = v2(
            "post",
            Some("hub.mode=subscribe&hub.challenge=12%2034&x"),
            Some("{\"a\":1}"),
            false,
        );
        assert!(is_http_request(&event));
        let request = HttpRequest::from_event(&event).expect("readable");
        assert_eq!(request.method(), "POST");
        assert_eq!(request.header("X-Hub-Signature-256"), Some("sha256=ab"));
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        // No queryStringParameters: the raw query string is decoded.
        assert_eq!(request.query("hub.challenge"), Some("12 34"));
        assert_eq!(request.query("x"), Some(""));
        assert_eq!(request.body(), b"{\"a\":1}");
        // The parameters AWS decoded win over the raw string.
        event["queryStringParameters"] = json!({"hub.mode": "subscribe", "n": 5});
        let request = HttpRequest::from_event(&event).expect("readable");
        assert_eq!(request.query("hub.mode"), Some("subscribe"));
        assert_eq!(request.query("hub.challenge"), None);
        assert_eq!(request.query("n"), None, "not a string: left out");
    }

    #[test]
    fn a_base64_body_is_decoded_to_its_bytes() {
        // Bytes that are not UTF-8: the signature covers bytes, not text.
        let event = v2("POST", None, Some("/wA="), true);
        let request = HttpRequest::from_event(&event).expect("readable");
        assert_eq!(request.body(), [0xff, 0x00]);
        let event = v2("POST", None, Some("not base64!"), true);
        assert_eq!(
            HttpRequest::from_event(&event),
            Err(RequestError::BodyNotBase64)
        );
        let event = v2("POST", None, None, false);
        assert_eq!(
            HttpRequest::from_event(&event).expect("readable").body(),
            b""
        );
        let mut event = v2("POST", None, None, false);
        event["body"] = json!({"object": "whatsapp_business_account"});
        assert_eq!(
            HttpRequest::from_event(&event),
            Err(RequestError::BodyNotText)
        );
    }

    #[test]
    fn a_rest_api_event_reads_headers_in_any_case() {
        let event = json!({"resource": "/webhook", "path": "/webhook", "httpMethod": "GET",
            "headers": {"X-Hub-Signature-256": "sha256=cd", "Host": "example.com"},
            "multiValueHeaders": {"X-Hub-Signature-256": ["sha256=cd"]},
            "queryStringParameters": {"hub.mode": "subscribe", "hub.challenge": "42"},
            "requestContext": {"httpMethod": "GET", "stage": "prod", "resourcePath": "/webhook"},
            "body": null, "isBase64Encoded": false});
        assert!(is_http_request(&event));
        let request = HttpRequest::from_event(&event).expect("readable");
        assert_eq!(request.method(), "GET");
        assert_eq!(request.header("x-hub-signature-256"), Some("sha256=cd"));
        assert_eq!(request.header("HOST"), Some("example.com"));
        assert_eq!(request.query("hub.challenge"), Some("42"));
        assert!(request.body().is_empty());
        // A REST API test call sends null headers and parameters.
        let bare = json!({"httpMethod": "GET", "headers": null, "queryStringParameters": null,
                          "requestContext": {}, "body": null});
        let request = HttpRequest::from_event(&bare).expect("readable");
        assert_eq!(request.header("x-hub-signature-256"), None);
        assert_eq!(request.query("hub.mode"), None);
    }

    #[test]
    fn other_shapes_are_never_http_requests() {
        let not_http = [
            json!({"type": "message.inbound", "account_id": "acme"}),
            json!({"object": "whatsapp_business_account", "entry": []}),
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
            json!({"detail-type": "message.inbound", "source": "inbox", "detail": {}}),
            // An event carrying HTTP-looking fields is still an event.
            json!({"type": "message.inbound", "httpMethod": "POST", "requestContext": {}}),
            json!({"object": "whatsapp_business_account", "entry": [],
                   "requestContext": {"http": {"method": "POST"}}}),
            json!({"Records": [], "httpMethod": "POST", "requestContext": {}}),
            // Half an HTTP event.
            json!({"httpMethod": "POST"}),
            json!({"requestContext": {"http": {}}}),
            json!({"requestContext": {"http": {"method": 5}}}),
            json!("GET"),
            json!(null),
        ];
        for payload in not_http {
            assert!(!is_http_request(&payload), "{payload}");
        }
    }

    #[test]
    fn only_objects_and_string_methods_make_a_request() {
        // A method key that holds no string makes no request, even with httpMethod.
        let null_method =
            json!({"requestContext": {"http": {"method": null}}, "httpMethod": "GET"});
        assert!(!is_http_request(&null_method));
        // Arrays are not objects, at the top or in requestContext.
        let array_context =
            json!({"requestContext": [{"http": {"method": "POST"}}], "httpMethod": "GET"});
        assert!(!is_http_request(&array_context));
        assert!(!is_http_request(json!([
            null,
            null,
            null,
            null,
            null,
            null,
            {},
            "GET"
        ])));
        // An `http` that is no object is no 2.0 method: the 1.0 one is read.
        let odd_http = json!({"requestContext": {"http": ["POST"]}, "httpMethod": "GET"});
        assert!(is_http_request(&odd_http));
        assert_eq!(
            HttpRequest::from_event(&odd_http)
                .expect("readable")
                .method(),
            "GET"
        );
    }

    #[test]
    fn of_two_headers_differing_in_case_the_later_wins() {
        let event = |first: &str, second: &str| {
            let text = format!(
                r#"{{"httpMethod": "POST", "requestContext": {{}},
                    "headers": {{"{first}": "1", "{second}": "2"}}}}"#
            );
            serde_json::from_str::<Value>(&text).expect("JSON")
        };
        for (first, second) in [
            ("X-Hub-Signature-256", "x-hub-signature-256"),
            ("x-hub-signature-256", "X-Hub-Signature-256"),
        ] {
            let request = HttpRequest::from_event(event(first, second)).expect("readable");
            assert_eq!(request.header("x-hub-signature-256"), Some("2"));
        }
    }

    #[test]
    fn debug_shows_no_values() {
        let request = post(Some("sha256=secret-looking"), b"+447911123456");
        let printed = format!("{request:?}");
        assert!(!printed.contains("secret-looking"), "{printed}");
        assert!(!printed.contains("7911"), "{printed}");
        assert!(printed.contains("x-hub-signature-256"), "{printed}");
    }

    /// What `cargo lambda watch` sends for a request to its function URL: an
    /// authorizer's fields set to null, and an `httpMethod` that is not the request's.
    #[test]
    fn cargo_lambdas_function_url_event_is_the_post_it_carries() {
        let event = json!({"type": null, "methodArn": null, "httpMethod": "GET",
            "identitySource": null, "authorizationToken": null, "resource": null,
            "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": null,
            "headers": {"host": "127.0.0.1:9000", "content-type": "application/json",
                        "x-hub-signature-256": "sha256=00"},
            "requestContext": {"routeKey": "$default", "stage": "$default",
                "http": {"method": "POST", "path": "/", "protocol": "http", "sourceIp": "127.0.0.1"}},
            "stageVariables": {}, "body": "{}", "isBase64Encoded": false});
        assert!(is_http_request(&event));
        let request = HttpRequest::from_event(&event).expect("readable");
        assert_eq!(request.method(), "POST");
        assert_eq!(request.header("X-Hub-Signature-256"), Some("sha256=00"));
        assert_eq!(request.body(), b"{}");
    }

    #[tokio::test]
    async fn the_subscription_check_answers_the_challenge_only_to_the_token() {
        let ports = ports();
        let ok = get(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", VERIFY_TOKEN),
            ("hub.challenge", "1158201444"),
        ]);
        let response = answer(&config(), &ports, ok.clone()).await;
        assert_eq!(response.status_code, 200);
        assert_eq!(response.body, "1158201444");
        assert_eq!(
            response.headers["content-type"],
            "text/plain; charset=utf-8"
        );

        for refused in [
            get(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", "wrong"),
                ("hub.challenge", "1"),
            ]),
            get(&[
                ("hub.mode", "unsubscribe"),
                ("hub.verify_token", VERIFY_TOKEN),
                ("hub.challenge", "1"),
            ]),
            get(&[("hub.verify_token", VERIFY_TOKEN), ("hub.challenge", "1")]),
            get(&[("hub.mode", "subscribe"), ("hub.challenge", "1")]),
            get(&[]),
        ] {
            let response = answer(&config(), &ports, refused).await;
            assert_eq!(response.status_code, 403);
            assert!(
                !response.body.contains('1'),
                "no challenge echoed: {}",
                response.body
            );
        }
        // No token configured: nothing verifies.
        let response = answer(&Config::default(), &ports, ok).await;
        assert_eq!(response.status_code, 403);
    }

    #[tokio::test]
    async fn an_unsigned_or_badly_signed_post_is_401_and_writes_nothing() {
        let ports = ports();
        let body = inbound_webhook();
        let other = sign(b"another body");
        let upper = sign(&body).to_ascii_uppercase(); // "SHA256=": the prefix is lower case
        for signature in [
            None,
            Some("sha256=00"),
            Some(other.as_str()),
            Some(upper.as_str()),
        ] {
            let response = answer(&config(), &ports, post(signature, &body)).await;
            assert_eq!(response.status_code, 401, "{signature:?}");
        }
        // A correct signature, but the function has no app secret to check it with.
        let unconfigured = Config {
            whatsapp_app_secret: None,
            ..config()
        };
        let response = answer(&unconfigured, &ports, post(Some(&sign(&body)), &body)).await;
        assert_eq!(response.status_code, 401);
        assert_eq!(ports.contacts.count(), 0);
        assert!(ports.ledger.answers().is_empty());
    }

    #[tokio::test]
    async fn a_signed_post_in_any_header_case_is_stored_raw_and_answered_200() {
        let ports = ports();
        let body = inbound_webhook();
        let signature = sign(&body);
        let hex_upper = format!(
            "sha256={}",
            signature["sha256=".len()..].to_ascii_uppercase()
        );
        for (name, value) in [
            ("x-hub-signature-256", &signature),
            ("X-HUB-SIGNATURE-256", &hex_upper),
        ] {
            let request = HttpRequest::new("POST", [(name, value.as_str())], [], body.clone());
            let response = answer(&config(), &ports, request).await;
            assert_eq!(response.status_code, 200, "{}", response.body);
        }
        // Stored as sent, duplicates too; nothing applied in the request.
        let queued = ports.webhooks.queued();
        assert_eq!(queued.len(), 2);
        assert!(queued.iter().all(|q| q.body == body));
        assert!(
            queued[0].received_at.ends_with('Z'),
            "{}",
            queued[0].received_at
        );
        assert_eq!(ports.contacts.count(), 0);
        assert!(ports.ledger.answers().is_empty());
    }

    #[tokio::test]
    async fn any_signed_body_is_stored_whatever_it_holds() {
        // The request only checks the signature; what the body is, the queue's consumer
        // finds out (and dead-letters what is no webhook).
        let ports = ports();
        for body in ["not json", "[1, 2]", r#"{"object": "page"}"#] {
            let request = post(Some(&sign(body.as_bytes())), body.as_bytes());
            let response = answer(&config(), &ports, request).await;
            assert_eq!(response.status_code, 200, "{body:?}");
        }
        assert_eq!(ports.webhooks.queued().len(), 3);
    }

    #[tokio::test]
    async fn a_signed_body_no_queue_takes_is_refused_at_once_with_what_is_wrong() {
        let ports = ports();
        let max = stored_webhook::MAX_MESSAGE_BYTES;
        let response = answer(&config(), &ports, post(Some(&sign(b"")), b"")).await;
        assert_eq!(response.status_code, 400);
        assert!(response.body.contains("empty"), "{}", response.body);
        let large = vec![b'x'; max + 1];
        let response = answer(&config(), &ports, post(Some(&sign(&large)), &large)).await;
        assert_eq!(response.status_code, 413, "{}", response.body);
        // Text at the limit is stored; bytes that need base64 count as encoded.
        let at_limit = vec![b'x'; max];
        let response = answer(&config(), &ports, post(Some(&sign(&at_limit)), &at_limit)).await;
        assert_eq!(response.status_code, 200);
        let binary = vec![0xffu8; max * 3 / 4 + 3];
        let response = answer(&config(), &ports, post(Some(&sign(&binary)), &binary)).await;
        assert_eq!(response.status_code, 413);
        assert_eq!(ports.webhooks.queued().len(), 1);
    }

    #[tokio::test]
    async fn a_body_that_cannot_be_stored_is_500_so_meta_retries() {
        let ports = ports();
        ports.webhooks.set_unreachable(true);
        let body = inbound_webhook();
        let response = answer(&config(), &ports, post(Some(&sign(&body)), &body)).await;
        assert_eq!(response.status_code, 500, "{}", response.body);
        assert!(!response.body.contains("Eva"), "{}", response.body);
        assert!(ports.webhooks.queued().is_empty());
        ports.webhooks.set_unreachable(false);
        let response = answer(&config(), &ports, post(Some(&sign(&body)), &body)).await;
        assert_eq!(response.status_code, 200);
    }

    #[tokio::test]
    async fn other_methods_are_405_and_unreadable_requests_400() {
        let ports = ports();
        for method in ["PUT", "DELETE", "HEAD", "OPTIONS", ""] {
            let request = HttpRequest::new(method, [], [], Vec::new());
            let response = answer(&config(), &ports, request).await;
            assert_eq!(response.status_code, 405, "{method:?}");
            assert_eq!(response.headers["allow"], "GET, POST");
        }
        let service = EventService {
            objects: &ports.objects,
            contacts: &ports.contacts,
            settings: &ports.settings,
            ledger: &ports.ledger,
            webhooks: &ports.webhooks,
            imports: &ports.jobs,
            config: &config(),
        };
        let response = service.handle_http(Err(RequestError::BodyNotBase64)).await;
        assert_eq!(response.status_code, 400);
    }

    #[test]
    fn responses_have_the_lambda_proxy_shape() {
        let response = HttpResponse::json(200, &json!({"status": "ok"}));
        assert!(response.is_success());
        assert_eq!(
            serde_json::to_value(&response).expect("serialises"),
            json!({"statusCode": 200, "headers": {"content-type": "application/json"},
                   "body": "{\"status\":\"ok\"}", "isBase64Encoded": false, "cookies": []})
        );
        assert!(!HttpResponse::text(403, "no").is_success());
    }
}
