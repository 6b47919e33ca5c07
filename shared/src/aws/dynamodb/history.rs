//! [`ImportHistory`]: an account's imports, newest first (DESIGN section 15, History).
//!
//! Each import has an index item in its account's partition,
//! `ACCOUNT#{account_id}` / `IMPORT#{started_at}#{import_id}`, holding its `import_id`
//! ([`JobStore::index_job`](crate::ports::JobStore::index_job) writes it). A page is one
//! Query of that partition's `IMPORT#` items, newest first, then one `BatchGetItem` of
//! their job items, both eventually consistent: never a Scan.
//!
//! Capacity: writing the index costs one write unit per import (and one per resume,
//! which puts the same item again). A page of `n` imports reads the index (0.5 read
//! unit: `n + 1` items of about 100 bytes) and `n` job items (0.5 unit each, under
//! 4 KB): about `0.5 + n / 2` read units, 10.5 for a page of 20.

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{key, s, Item, Reader};
use super::DynamoTable;
use crate::aws::service;
use crate::domain::keys::{account_pk, import_index_sk, job_pk, IMPORT_INDEX_PREFIX, JOB_SK};
use crate::ports::{ImportHistory, ImportPage, Job, StoreError, MAX_IMPORTS_PER_PAGE};

/// The index item of a job.
pub(super) fn index_item(job: &Job) -> Item {
    Item::from([
        ("pk".to_string(), s(account_pk(&job.account_id))),
        (
            "sk".to_string(),
            s(import_index_sk(&job.started_at, &job.import_id)),
        ),
        ("import_id".to_string(), s(&job.import_id)),
    ])
}

/// Query rounds for one page: a Query stops at 1 MB (or, on dynoxide, may answer an
/// empty page) before `Limit`; index items are far smaller, so one round is the rule.
const MAX_QUERY_ROUNDS: u32 = 8;

impl ImportHistory for DynamoTable {
    async fn imports_page(
        &self,
        account_id: &str,
        limit: usize,
        after: Option<&str>,
    ) -> Result<ImportPage, StoreError> {
        let limit = limit.clamp(1, MAX_IMPORTS_PER_PAGE);
        let pk = account_pk(account_id);
        // One item more than the page: whether another page follows is then known from
        // the items themselves, never from LastEvaluatedKey (dynoxide may answer one
        // after the last item, and then an empty page).
        let wanted = limit + 1;
        let mut index: Vec<(String, String)> = Vec::with_capacity(wanted);
        let mut start = after.map(|sk| key(pk.clone(), sk));
        for _ in 0..MAX_QUERY_ROUNDS {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":prefix", s(IMPORT_INDEX_PREFIX))
                .scan_index_forward(false)
                .limit(i32::try_from(wanted - index.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| service("DynamoDB Query (import index)")(e.into_service_error()))?;
            for item in out.items() {
                let read = Reader::new(item);
                let sk = read.string("sk")?.to_string();
                index.push((sk, read.string("import_id")?.to_string()));
            }
            start = out.last_evaluated_key().cloned();
            if index.len() >= wanted || start.is_none() {
                break;
            }
        }
        let more = index.len() > limit;
        index.truncate(limit);
        let next = index.last().filter(|_| more).map(|(sk, _)| sk.clone());
        let jobs = self.jobs_in_order(account_id, &index).await?;
        Ok(ImportPage { jobs, next })
    }
}

impl DynamoTable {
    /// The job items of `index` (sort key, import id), in its order; an index item whose
    /// job item is gone is left out, with a warning.
    async fn jobs_in_order(
        &self,
        account_id: &str,
        index: &[(String, String)],
    ) -> Result<Vec<Job>, StoreError> {
        if index.is_empty() {
            return Ok(Vec::new());
        }
        let keys = index
            .iter()
            .map(|(_, import_id)| key(job_pk(account_id, import_id), JOB_SK))
            .collect();
        let read = self
            .batch_get_as(keys, None, false, "DynamoDB BatchGetItem (import jobs)")
            .await?;
        let mut by_pk: std::collections::HashMap<String, Item> = read
            .into_iter()
            .filter_map(|item| match item.get("pk") {
                Some(AttributeValue::S(pk)) => Some((pk.clone(), item)),
                _ => None,
            })
            .collect();
        let mut jobs = Vec::with_capacity(index.len());
        for (sk, import_id) in index {
            match by_pk.remove(&job_pk(account_id, import_id)) {
                Some(item) => jobs.push(Job::try_from(&item)?),
                None => tracing::warn!(
                    account_id,
                    sk,
                    "import index item without its job item; skipped"
                ),
            }
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
    use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
    use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
    use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity};
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::super::item::n;
    use super::super::testing::{Requests, TABLE};
    use super::*;
    use crate::domain::keys::summary_key;
    use crate::domain::outcome::{ImportStatus, RowCounts};
    use crate::ports::{JobProgress, JobStore};

    /// Import `i` of acme, started `i` seconds after 10:00, finished unless running.
    fn job(i: u32, status: ImportStatus) -> Job {
        let import_id = format!("imp_{i:016x}");
        Job {
            account_id: "acme".into(),
            summary_key: summary_key("acme", &import_id),
            completion_pending: false,
            source_key: format!("imports/acme/whatsapp/{i}.csv"),
            started_at: format!("2026-11-21T10:00:{i:02}.000Z"),
            finished_at: (status != ImportStatus::Running)
                .then(|| format!("2026-11-21T10:00:{i:02}.500Z")),
            status,
            progress: JobProgress {
                rows: RowCounts {
                    total: 2,
                    created: 2,
                    ..RowCounts::default()
                },
                last_row: 3,
                ..JobProgress::default()
            },
            lease_expires_at: 1_800_000_000,
            lease_token: "token".into(),
            import_id,
        }
    }

    /// A job's item as the job store writes it.
    fn job_item(job: &Job) -> Item {
        super::super::jobs::job_item(job, "2026-11-21T10:01:00Z".into())
    }

    fn index_of(job: &Job) -> Item {
        index_item(job)
    }

    #[test]
    fn the_index_item_is_the_accounts_and_sorts_by_start_time() {
        assert_eq!(
            index_item(&job(7, ImportStatus::Completed)),
            HashMap::from([
                ("pk".to_string(), s("ACCOUNT#acme")),
                (
                    "sk".to_string(),
                    s("IMPORT#2026-11-21T10:00:07.000Z#imp_0000000000000007")
                ),
                ("import_id".to_string(), s("imp_0000000000000007")),
            ])
        );
    }

    #[tokio::test]
    async fn indexing_a_job_is_one_unconditional_put_of_its_index_item() {
        // GIVEN a table that takes puts
        let requests = Requests::<PutItemInput>::new();
        let rule = mock!(Client::put_item)
            .match_requests(requests.recorder())
            .then_output(|| PutItemOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&rule]), TABLE);

        // WHEN a job is indexed
        let running = job(7, ImportStatus::Running);
        table.index_job(&running).await.expect("indexed");

        // THEN its index item is put, with no condition (a rewrite puts the same item)
        let put = requests.only();
        assert_eq!(put.table_name(), Some(TABLE));
        assert_eq!(put.item(), Some(&index_item(&running)));
        assert_eq!(put.condition_expression(), None);
        assert_eq!(
            put.return_consumed_capacity(),
            Some(&ReturnConsumedCapacity::Total)
        );
    }

    #[tokio::test]
    async fn a_page_is_a_newest_first_query_of_one_more_then_a_batch_get_in_its_order() {
        // GIVEN acme's index answering imports 9, 8 and 7 (the page and one more), and
        // the job items of 9 and 8, answered in another order
        let (nine, eight, seven) = (
            job(9, ImportStatus::Running),
            job(8, ImportStatus::CompletedWithErrors),
            job(7, ImportStatus::Completed),
        );
        let queries = Requests::<QueryInput>::new();
        let index = [index_of(&nine), index_of(&eight), index_of(&seven)];
        let query = mock!(Client::query)
            .match_requests(queries.recorder())
            .then_output(move || {
                QueryOutput::builder()
                    .set_items(Some(index.to_vec()))
                    .set_last_evaluated_key(Some(index[2].clone()))
                    .build()
            });
        let reads = Requests::<BatchGetItemInput>::new();
        let items = vec![job_item(&eight), job_item(&nine)];
        let read = mock!(Client::batch_get_item)
            .match_requests(reads.recorder())
            .then_output(move || {
                BatchGetItemOutput::builder()
                    .responses(TABLE, items.clone())
                    .build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&query, &read]);
        let table = DynamoTable::new(client, TABLE);

        // WHEN a page of two is read after import 10
        let after = "IMPORT#2026-11-21T10:00:10.000Z#imp_000000000000000a";
        let page = table
            .imports_page("acme", 2, Some(after))
            .await
            .expect("a page");

        // THEN it holds 9 then 8, and continues after 8 (7 exists)
        assert_eq!(page.jobs, vec![nine.clone(), eight.clone()]);
        assert_eq!(
            page.next.as_deref(),
            Some("IMPORT#2026-11-21T10:00:08.000Z#imp_0000000000000008")
        );
        // AND the index was read by key: acme's partition, IMPORT# items, newest first,
        // three items, after the token's item
        let query = queries.only();
        assert_eq!(query.table_name(), Some(TABLE));
        assert_eq!(query.index_name(), None);
        assert_eq!(
            query.key_condition_expression(),
            Some("pk = :pk AND begins_with(sk, :prefix)")
        );
        let values = query.expression_attribute_values().expect("values");
        assert_eq!(values.get(":pk"), Some(&s("ACCOUNT#acme")));
        assert_eq!(values.get(":prefix"), Some(&s("IMPORT#")));
        assert_eq!(query.scan_index_forward(), Some(false));
        assert_eq!(query.limit(), Some(3));
        assert_eq!(query.consistent_read(), None);
        assert_eq!(
            query.exclusive_start_key(),
            Some(&HashMap::from([
                ("pk".to_string(), s("ACCOUNT#acme")),
                ("sk".to_string(), s(after)),
            ]))
        );
        assert_eq!(
            query.return_consumed_capacity(),
            Some(&ReturnConsumedCapacity::Total)
        );
        // AND the job items of the page only were read in one eventually consistent batch
        let batch = reads.only();
        let keys: &KeysAndAttributes = batch
            .request_items()
            .and_then(|r| r.get(TABLE))
            .expect("keys");
        assert_eq!(
            keys.keys(),
            [
                key(job_pk("acme", &nine.import_id), "JOB"),
                key(job_pk("acme", &eight.import_id), "JOB"),
            ]
        );
        assert_eq!(keys.consistent_read(), Some(false));
        assert_eq!(keys.projection_expression(), None);
        assert_eq!(
            batch.return_consumed_capacity(),
            Some(&ReturnConsumedCapacity::Total)
        );
    }

    #[tokio::test]
    async fn the_last_page_has_no_next_even_when_the_query_says_there_may_be_more() {
        // GIVEN an index of two imports that answers a LastEvaluatedKey with them (as
        // dynoxide may), then an empty page; one job item was deleted since
        let (two, one) = (
            job(2, ImportStatus::Completed),
            job(1, ImportStatus::Failed),
        );
        let queries = Requests::<QueryInput>::new();
        let index = [index_of(&two), index_of(&one)];
        let first = mock!(Client::query)
            .match_requests(queries.recorder())
            .then_output(move || {
                QueryOutput::builder()
                    .set_items(Some(index.to_vec()))
                    .set_last_evaluated_key(Some(index[1].clone()))
                    .build()
            });
        let empty = mock!(Client::query)
            .match_requests(queries.recorder())
            .then_output(|| QueryOutput::builder().build());
        let item = job_item(&two);
        let read = mock!(Client::batch_get_item).then_output(move || {
            BatchGetItemOutput::builder()
                .responses(TABLE, vec![item.clone()])
                .build()
        });
        let client = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&first, &empty, &read]
        );
        let table = DynamoTable::new(client, TABLE);

        // WHEN the first page of ten is read
        let page = table.imports_page("acme", 10, None).await.expect("a page");

        // THEN it is the last: the import that still has its job, and no next; the
        // second query asked for the rest after the first one's last item
        assert_eq!(
            page,
            ImportPage {
                jobs: vec![two],
                next: None
            }
        );
        let sent = queries.all();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].limit(), Some(11));
        assert_eq!(sent[0].exclusive_start_key(), None);
        assert_eq!(sent[1].limit(), Some(9));
        assert_eq!(sent[1].exclusive_start_key(), Some(&index_of(&one)));
    }

    #[tokio::test]
    async fn unprocessed_job_keys_are_read_again() {
        // GIVEN a batch read that leaves one of two keys unprocessed the first time
        let (two, one) = (
            job(2, ImportStatus::Completed),
            job(1, ImportStatus::Completed),
        );
        let index = [index_of(&two), index_of(&one)];
        let query = mock!(Client::query).then_output(move || {
            QueryOutput::builder()
                .set_items(Some(index.to_vec()))
                .build()
        });
        let reads = Requests::<BatchGetItemInput>::new();
        let (first_item, unprocessed_key) =
            (job_item(&two), key(job_pk("acme", &one.import_id), "JOB"));
        let partial = mock!(Client::batch_get_item)
            .match_requests(reads.recorder())
            .then_output(move || {
                let left = KeysAndAttributes::builder()
                    .keys(unprocessed_key.clone())
                    .build()
                    .expect("keys");
                BatchGetItemOutput::builder()
                    .responses(TABLE, vec![first_item.clone()])
                    .unprocessed_keys(TABLE, left)
                    .build()
            });
        let second_item = job_item(&one);
        let rest = mock!(Client::batch_get_item)
            .match_requests(reads.recorder())
            .then_output(move || {
                BatchGetItemOutput::builder()
                    .responses(TABLE, vec![second_item.clone()])
                    .build()
            });
        let client = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::Sequential,
            [&query, &partial, &rest]
        );
        let table = DynamoTable::new(client, TABLE);

        // WHEN the page is read
        let page = table.imports_page("acme", 5, None).await.expect("a page");

        // THEN both imports are there, newest first; the second batch asked for the
        // unprocessed key alone
        assert_eq!(page.jobs, vec![two, one.clone()]);
        assert_eq!(page.next, None);
        let sent = reads.all();
        assert_eq!(sent.len(), 2);
        let second = sent[1].request_items().and_then(|r| r.get(TABLE));
        assert_eq!(
            second.map(KeysAndAttributes::keys),
            Some(&[key(job_pk("acme", &one.import_id), "JOB")][..])
        );
    }

    #[tokio::test]
    async fn an_empty_history_reads_no_job() {
        let query = mock!(Client::query).then_output(|| QueryOutput::builder().build());
        let table = DynamoTable::new(mock_client!(aws_sdk_dynamodb, [&query]), TABLE);
        let page = table.imports_page("acme", 20, None).await.expect("a page");
        assert_eq!(page, ImportPage::default());
    }

    #[test]
    fn a_job_item_with_its_finish_time_reads_back() {
        let done = job(3, ImportStatus::Completed);
        let mut item = job_item(&done);
        assert_eq!(
            item.get("finished_at"),
            Some(&s("2026-11-21T10:00:03.500Z"))
        );
        assert_eq!(Job::try_from(&item).expect("decodes"), done);
        item.insert("finished_at".into(), n(1));
        assert!(Job::try_from(&item).is_err(), "a finish time is a string");
    }
}
