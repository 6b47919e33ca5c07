//! [`SettingsStore`]: an account's settings item (`default_country`, optional).

use super::item::{s, Reader};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::keys::{settings_pk, SETTINGS_SK};
use crate::ports::{SettingsStore, StoreError};

impl SettingsStore for DynamoTable {
    async fn default_country(&self, account_id: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(settings_pk(account_id)))
            .key("sk", s(SETTINGS_SK))
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem (settings)")(e.into_service_error()))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let country = Reader::new(item).optional_string("default_country")?;
        Ok(country.map(str::to_string))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;
    use crate::aws::dynamodb::item::Item;
    use crate::aws::dynamodb::testing::{Requests, TABLE};

    #[tokio::test]
    async fn the_setting_is_read_from_the_accounts_item_and_may_be_absent() {
        // GIVEN acme's settings item, with a default country, and no item for beta
        let requests = Requests::<GetItemInput>::new();
        let acme = mock!(Client::get_item)
            .match_requests(requests.recorder())
            .then_output(|| {
                let item = Item::from([
                    ("pk".into(), s("ACCOUNT#acme")),
                    ("sk".into(), s("SETTINGS")),
                    ("default_country".into(), s("IN")),
                ]);
                GetItemOutput::builder().set_item(Some(item)).build()
            });
        let beta = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&acme, &beta]);
        let table = DynamoTable::new(client, TABLE);

        // WHEN each account's default country is read
        let acme_country = table.default_country("acme").await.expect("read");
        let beta_country = table.default_country("beta").await.expect("read");

        // THEN acme's comes from ACCOUNT#acme / SETTINGS, and beta has none
        assert_eq!(acme_country.as_deref(), Some("IN"));
        assert_eq!(beta_country, None);
        let get = requests.only();
        let key = Item::from([
            ("pk".into(), s("ACCOUNT#acme")),
            ("sk".into(), s("SETTINGS")),
        ]);
        assert_eq!((get.table_name(), get.key()), (Some(TABLE), Some(&key)));
    }
}
