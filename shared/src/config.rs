//! Configuration read once at start-up from the environment (DESIGN section 3).

use crate::domain::phone::Region;
use crate::domain::secret::Secret;
use crate::domain::suppression::SuppressionKey;

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
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
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
