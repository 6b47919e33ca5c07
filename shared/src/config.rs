//! Configuration read once at start-up from the environment (DESIGN section 3).

use std::collections::HashMap;

use crate::domain::phone::Region;
use crate::domain::secret::Secret;
use crate::domain::suppression::SuppressionKey;
use crate::ports::{SecretStore, StoreError};

/// The secrets a deployment names by the ARN of a Secrets Manager secret, in
/// `{NAME}_ARN` (the template never puts their values in the environment). The plain
/// `{NAME}` variables are for local development only.
pub const SECRETS: [&str; 3] = [
    "SUPPRESSION_SECRET",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
];

/// Why start-up could not read a secret. Never holds the secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Both the value and the secret's ARN are set: which one is meant is unclear.
    #[error("set {name} (local development) or {name}_ARN, not both")]
    Both {
        /// The secret's variable.
        name: &'static str,
    },
    /// The store did not answer the secret.
    #[error("{name}_ARN={id:?}: the secret could not be read")]
    Unreadable {
        /// The secret's variable.
        name: &'static str,
        /// The ARN it names.
        id: String,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// A value that does not fit.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Function configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `CONTACTS_TABLE`.
    pub table: String,
    /// `CONTACTS_BUCKET`.
    pub bucket: String,
    /// `DEFAULT_COUNTRY`.
    pub default_country: Option<Region>,
    /// `MAX_UPLOAD_BYTES`.
    pub max_upload_bytes: u64,
    /// `MAX_ROWS`.
    pub max_rows: u64,
    /// `WRITE_CONCURRENCY`: conditional writes in flight at once.
    pub write_concurrency: usize,
    /// `IMPORT_TIME_LIMIT_SECONDS`: most time one invocation imports before it hands
    /// over to a new one, when that comes before the invocation's own deadline. Unset on
    /// Lambda; set locally, where `cargo lambda watch` gives no usable deadline.
    pub time_limit: Option<std::time::Duration>,
    /// `SUPPRESSION_SECRET`: the key of erasure tombstones. Without it `contact.erase`
    /// is refused, and imports and campaigns have no tombstones to check.
    pub suppression: Option<SuppressionKey>,
    /// `WHATSAPP_APP_SECRET`: the Meta app secret webhook POSTs are signed with
    /// (`X-Hub-Signature-256`). Without it every POST is refused (401).
    pub whatsapp_app_secret: Option<Secret>,
    /// How long an import's worker holds its job between renewals before another
    /// invocation may take it over (seconds; not read from the environment: tests
    /// shorten it).
    pub lease_seconds: i64,
    /// `WHATSAPP_VERIFY_TOKEN`: the token Meta's subscription GET must present
    /// (`hub.verify_token`). Without it every GET is refused (403).
    pub whatsapp_verify_token: Option<Secret>,
    /// `WEBHOOK_QUEUE_URL`: the SQS queue a signed webhook POST is stored on before it
    /// is answered. Without it every POST is answered 500 (nothing could be stored), so
    /// Meta keeps it for later.
    pub webhook_queue_url: Option<String>,
    /// `WEBHOOK_DEAD_LETTER_QUEUE_URL`: where a stored webhook that cannot be applied
    /// goes, with its reason. Without it such a record is left to the queue's redrive.
    pub webhook_dead_letter_queue_url: Option<String>,
    /// `WEBHOOK_MAX_RECEIVE_COUNT`: the webhook queue's `maxReceiveCount`; a record that
    /// fails on its last receive is dead-lettered with its reason by the function.
    pub webhook_max_receive_count: u64,
    /// `EVENT_BUS_NAME`: the EventBridge bus an import's completion event goes to
    /// (DESIGN section 15); `default` unless set.
    pub event_bus: String,
}

/// A variable with a value the functions cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {problem}")]
pub struct ConfigError {
    /// Variable name.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong.
    pub problem: &'static str,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            table: "contacts".into(),
            bucket: "contact-uploads".into(),
            default_country: None,
            max_upload_bytes: 104_857_600,
            max_rows: 1_000_000,
            write_concurrency: 16,
            time_limit: None,
            suppression: None,
            lease_seconds: crate::import::LEASE_SECONDS,
            whatsapp_app_secret: None,
            whatsapp_verify_token: None,
            webhook_queue_url: None,
            webhook_dead_letter_queue_url: None,
            webhook_max_receive_count: 5,
            event_bus: "default".into(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the process environment, and the secrets it names by ARN from `secrets`
    /// (once: the configuration lives as long as the function's environment).
    pub async fn from_env_and(secrets: &impl SecretStore) -> Result<Config, SecretError> {
        Config::with_secrets(|name| std::env::var(name).ok(), secrets).await
    }

    /// [`Config::from_lookup`], with each of [`SECRETS`] whose `{NAME}_ARN` is set read
    /// from `secrets`.
    pub async fn with_secrets(
        lookup: impl Fn(&str) -> Option<String>,
        secrets: &impl SecretStore,
    ) -> Result<Config, SecretError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut read: HashMap<&str, String> = HashMap::new();
        for name in SECRETS {
            let Some(id) = set(&format!("{name}_ARN")) else {
                continue;
            };
            if set(name).is_some() {
                return Err(SecretError::Both { name });
            }
            let id = id.trim().to_string();
            let value = secrets
                .secret_string(&id)
                .await
                .map_err(|source| SecretError::Unreadable { name, id, source })?;
            read.insert(name, value);
        }
        Ok(Config::from_lookup(|name| {
            read.get(name).cloned().or_else(|| lookup(name))
        })?)
    }

    /// Reads configuration through `lookup` (testable without touching the process).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => match value.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(ConfigError {
                        name,
                        value,
                        problem: "expected a positive whole number",
                    }),
                },
            }
        };
        let default_country = match get("DEFAULT_COUNTRY") {
            None => None,
            Some(value) => Some(Region::parse(&value).ok_or(ConfigError {
                name: "DEFAULT_COUNTRY",
                value,
                problem: "expected an ISO 3166-1 alpha-2 country code such as GB",
            })?),
        };
        let write_concurrency = number("WRITE_CONCURRENCY", defaults.write_concurrency as u64)?;
        let suppression = match get("SUPPRESSION_SECRET") {
            None => None,
            Some(secret) => Some(SuppressionKey::new(secret.as_bytes()).ok_or(ConfigError {
                name: "SUPPRESSION_SECRET",
                value: "(not shown)".into(),
                problem: "expected a secret of at least 16 bytes",
            })?),
        };
        Ok(Config {
            event_bus: get("EVENT_BUS_NAME").unwrap_or(defaults.event_bus),
            table: get("CONTACTS_TABLE").unwrap_or(defaults.table),
            bucket: get("CONTACTS_BUCKET").unwrap_or(defaults.bucket),
            default_country,
            max_upload_bytes: number("MAX_UPLOAD_BYTES", defaults.max_upload_bytes)?,
            max_rows: number("MAX_ROWS", defaults.max_rows)?,
            write_concurrency: write_concurrency.min(256) as usize,
            time_limit: match get("IMPORT_TIME_LIMIT_SECONDS") {
                None => None,
                Some(_) => Some(std::time::Duration::from_secs(number(
                    "IMPORT_TIME_LIMIT_SECONDS",
                    0,
                )?)),
            },
            suppression,
            lease_seconds: defaults.lease_seconds,
            // Any non-empty value: Meta chooses the app secret, the developer the token.
            whatsapp_app_secret: get("WHATSAPP_APP_SECRET").and_then(Secret::new),
            whatsapp_verify_token: get("WHATSAPP_VERIFY_TOKEN").and_then(Secret::new),
            webhook_queue_url: get("WEBHOOK_QUEUE_URL").filter(|url| !url.is_empty()),
            webhook_dead_letter_queue_url: get("WEBHOOK_DEAD_LETTER_QUEUE_URL")
                .filter(|url| !url.is_empty()),
            webhook_max_receive_count: number(
                "WEBHOOK_MAX_RECEIVE_COUNT",
                defaults.webhook_max_receive_count,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let config = Config::from_lookup(|_| None).expect("defaults");
        assert_eq!(config.table, "contacts");
        assert_eq!(config.max_upload_bytes, 104_857_600);
        let config = Config::from_lookup(|n| (n == "DEFAULT_COUNTRY").then(|| "gb".to_string()))
            .expect("valid");
        assert_eq!(
            config.default_country.as_ref().map(Region::code),
            Some("GB")
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_lookup(|n| (n == "MAX_ROWS").then(|| "lots".to_string()))
            .expect_err("bad");
        assert!(Config::from_lookup(
            |n| (n == "IMPORT_TIME_LIMIT_SECONDS").then(|| "0".to_string())
        )
        .is_err());
        let limited =
            Config::from_lookup(|n| (n == "IMPORT_TIME_LIMIT_SECONDS").then(|| "20".to_string()))
                .expect("valid");
        assert_eq!(limited.time_limit, Some(std::time::Duration::from_secs(20)));
        assert!(err.to_string().contains("MAX_ROWS"));
        assert!(
            Config::from_lookup(|n| (n == "DEFAULT_COUNTRY").then(|| "XYZ".to_string())).is_err()
        );
    }

    /// Secrets by ARN, answering only those it holds.
    struct Secrets(&'static [(&'static str, &'static str)]);

    impl SecretStore for Secrets {
        async fn secret_string(&self, id: &str) -> Result<String, StoreError> {
            let found = self.0.iter().find(|(arn, _)| *arn == id);
            found
                .map(|(_, value)| value.to_string())
                .ok_or_else(|| StoreError::NotFound {
                    bucket: "secrets".into(),
                    key: id.into(),
                })
        }
    }

    const APP_ARN: &str = "arn:aws:secretsmanager:eu-west-1:1:secret:app-AbCdEf";
    const SUPPRESSION_ARN: &str = "arn:aws:secretsmanager:eu-west-1:1:secret:suppression-AbCdEf";

    #[tokio::test]
    async fn secrets_named_by_arn_are_read_from_the_store() {
        let store = Secrets(&[
            (APP_ARN, "app-secret-from-store"),
            (SUPPRESSION_ARN, "suppression-secret-from-the-store"),
        ]);
        let env = |name: &str| match name {
            "WHATSAPP_APP_SECRET_ARN" => Some(APP_ARN.to_string()),
            "SUPPRESSION_SECRET_ARN" => Some(SUPPRESSION_ARN.to_string()),
            "WHATSAPP_VERIFY_TOKEN" => Some("local-token".to_string()),
            _ => None,
        };
        let config = Config::with_secrets(env, &store).await.expect("read");
        let app = config.whatsapp_app_secret.as_ref().expect("app secret");
        assert!(app.matches("app-secret-from-store"));
        let token = config.whatsapp_verify_token.as_ref().expect("plain value");
        assert!(token.matches("local-token"));
        let key = config.suppression.as_ref().expect("suppression key");
        let expected = SuppressionKey::new(b"suppression-secret-from-the-store").expect("key");
        assert_eq!(
            key.digest("+447911123456"),
            expected.digest("+447911123456")
        );
    }

    #[tokio::test]
    async fn a_secret_that_cannot_be_read_or_is_set_twice_stops_start_up_without_its_value() {
        let store = Secrets(&[(SUPPRESSION_ARN, "too-short")]);
        let missing = |name: &str| (name == "WHATSAPP_APP_SECRET_ARN").then(|| APP_ARN.to_string());
        let both = |name: &str| match name {
            "WHATSAPP_APP_SECRET_ARN" => Some(APP_ARN.to_string()),
            "WHATSAPP_APP_SECRET" => Some("plain-app-secret".to_string()),
            _ => None,
        };
        let short =
            |name: &str| (name == "SUPPRESSION_SECRET_ARN").then(|| SUPPRESSION_ARN.to_string());
        let missing = Config::with_secrets(missing, &store)
            .await
            .expect_err("missing");
        assert!(matches!(
            missing,
            SecretError::Unreadable {
                name: "WHATSAPP_APP_SECRET",
                ..
            }
        ));
        assert!(missing.to_string().contains(APP_ARN), "{missing}");
        let both = Config::with_secrets(both, &store).await.expect_err("both");
        assert_eq!(
            both.to_string(),
            "set WHATSAPP_APP_SECRET (local development) or WHATSAPP_APP_SECRET_ARN, not both"
        );
        let short = Config::with_secrets(short, &store)
            .await
            .expect_err("short");
        assert!(short.to_string().contains("SUPPRESSION_SECRET"), "{short}");
        assert!(!short.to_string().contains("too-short"), "{short}");
    }

    #[test]
    fn whatsapp_secrets_are_optional_and_never_printed() {
        let config = Config::from_lookup(|_| None).expect("defaults");
        assert!(config.whatsapp_app_secret.is_none());
        assert!(config.whatsapp_verify_token.is_none());
        let config = Config::from_lookup(|n| match n {
            "WHATSAPP_APP_SECRET" => Some("app-secret-value".to_string()),
            "WHATSAPP_VERIFY_TOKEN" => Some(" verify-token-value ".to_string()),
            _ => None,
        })
        .expect("valid");
        let secret = config.whatsapp_app_secret.as_ref().expect("set");
        assert!(secret.matches("app-secret-value"));
        let token = config.whatsapp_verify_token.as_ref().expect("set");
        assert!(token.matches("verify-token-value"));
        let printed = format!("{config:?}");
        assert!(!printed.contains("app-secret-value"), "{printed}");
        assert!(!printed.contains("verify-token-value"), "{printed}");
        let blank = Config::from_lookup(|n| (n == "WHATSAPP_APP_SECRET").then(|| "  ".to_string()))
            .expect("valid");
        assert!(blank.whatsapp_app_secret.is_none());
    }
}
