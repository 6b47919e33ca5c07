//! [`SecretStore`] on AWS Secrets Manager: a secret's `SecretString`, by ARN. The value
//! never appears in an error: only the secret's id and what went wrong.

use aws_sdk_secretsmanager::Client;

use super::service;
use crate::ports::{SecretStore, StoreError};

/// The deployment's secrets in Secrets Manager.
#[derive(Clone, Debug)]
pub struct SecretsManagerSecrets {
    client: Client,
}

impl SecretsManagerSecrets {
    /// Reads through `client`.
    pub fn new(client: Client) -> Self {
        SecretsManagerSecrets { client }
    }
}

impl SecretStore for SecretsManagerSecrets {
    async fn secret_string(&self, id: &str) -> Result<String, StoreError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| service("Secrets Manager GetSecretValue")(e.into_service_error()))?;
        answer
            .secret_string()
            .map(str::to_string)
            .ok_or_else(|| StoreError::Malformed {
                pk: id.to_string(),
                problem: "the secret holds no text (SecretString); binary secrets are not read"
                    .into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::operation::get_secret_value::{
        GetSecretValueError, GetSecretValueInput, GetSecretValueOutput,
    };
    use aws_sdk_secretsmanager::primitives::Blob;
    use aws_sdk_secretsmanager::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{mock, mock_client};

    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:contacts/app-AbCdEf";

    #[tokio::test]
    async fn a_secret_is_read_by_its_arn() {
        // A request for any other id matches no rule, and the mocked client fails it.
        let rule = mock!(Client::get_secret_value)
            .match_requests(|input: &GetSecretValueInput| input.secret_id() == Some(ARN))
            .then_output(|| {
                GetSecretValueOutput::builder()
                    .secret_string("s3cr3t-value")
                    .build()
            });
        let secrets = SecretsManagerSecrets::new(mock_client!(aws_sdk_secretsmanager, [&rule]));

        let value = secrets.secret_string(ARN).await.expect("read");

        assert_eq!(value, "s3cr3t-value");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_missing_or_binary_secret_is_an_error_without_a_value() {
        let missing = mock!(Client::get_secret_value).then_error(|| {
            GetSecretValueError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("Secrets Manager can't find the specified secret.")
                    .build(),
            )
        });
        let binary = mock!(Client::get_secret_value).then_output(|| {
            GetSecretValueOutput::builder()
                .secret_binary(Blob::new(b"s3cr3t-bytes".to_vec()))
                .build()
        });
        for (rule, expected) in [
            (&missing, "Secrets Manager GetSecretValue failed"),
            (&binary, "binary secrets are not read"),
        ] {
            let secrets = SecretsManagerSecrets::new(mock_client!(aws_sdk_secretsmanager, [rule]));
            let error = secrets.secret_string(ARN).await.expect_err("refused");
            let text = format!("{error}: {:?}", std::error::Error::source(&error));
            assert!(text.contains(expected), "{text}");
            assert!(!text.contains("s3cr3t"), "{text}");
        }
    }
}
