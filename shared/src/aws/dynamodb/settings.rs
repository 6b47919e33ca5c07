//! [`SettingsStore`]: an account's settings item (`default_country`, optional).

use super::item::{s, Reader};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::keys::{mapping_sk, settings_pk, SETTINGS_SK};
use crate::ports::{SavedMapping, SettingsStore, StoreError};

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

    /// One strongly consistent GetItem: the upload just before may have saved it.
    async fn saved_mapping(
        &self,
        account_id: &str,
        signature: &str,
    ) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(settings_pk(account_id)))
            .key("sk", s(mapping_sk(signature)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| service("DynamoDB GetItem (saved mapping)")(e.into_service_error()))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        Ok(Some(Reader::new(item).string("mapping")?.to_string()))
    }

    /// One PutItem (the option's JSON, at most 2 KB of metadata: one to three write
    /// units), replacing an earlier one.
    async fn save_mapping(
        &self,
        account_id: &str,
        mapping: &SavedMapping,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(settings_pk(account_id)))
            .item("sk", s(mapping_sk(&mapping.signature)))
            .item("mapping", s(&mapping.mapping))
            .item("import_id", s(&mapping.import_id))
            .item("saved_at", s(&mapping.saved_at))
            .send()
            .await
            .map_err(|e| service("DynamoDB PutItem (saved mapping)")(e.into_service_error()))?;
        Ok(())
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

    #[tokio::test]
    async fn a_mapping_is_kept_under_its_header_signature_in_the_accounts_partition() {
        use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
        let puts = Requests::<PutItemInput>::new();
        let put = mock!(Client::put_item)
            .match_requests(puts.recorder())
            .then_output(|| PutItemOutput::builder().build());
        let gets = Requests::<GetItemInput>::new();
        let get = mock!(Client::get_item)
            .match_requests(gets.recorder())
            .then_output(|| {
                let item = Item::from([
                    ("pk".into(), s("ACCOUNT#acme")),
                    ("sk".into(), s("MAPPING#abc")),
                    ("mapping".into(), s(r#"{"Handy":"phone"}"#)),
                ]);
                GetItemOutput::builder().set_item(Some(item)).build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&put, &get]);
        let table = DynamoTable::new(client, TABLE);
        let saved = SavedMapping {
            signature: "abc".into(),
            mapping: r#"{"Handy":"phone"}"#.into(),
            import_id: "imp_1".into(),
            saved_at: "2026-12-03T10:00:00.000Z".into(),
        };

        table.save_mapping("acme", &saved).await.expect("saved");
        let read = table.saved_mapping("acme", "abc").await.expect("read");

        let put = puts.only();
        let item = put.item().expect("item");
        assert_eq!(item.get("pk"), Some(&s("ACCOUNT#acme")));
        assert_eq!(item.get("sk"), Some(&s("MAPPING#abc")));
        assert_eq!(item.get("mapping"), Some(&s(r#"{"Handy":"phone"}"#)));
        let get = gets.only();
        assert_eq!(get.consistent_read(), Some(true));
        assert_eq!(read.as_deref(), Some(r#"{"Handy":"phone"}"#));
    }
}
