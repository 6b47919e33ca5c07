//! `imports.list`: the event checked, then a page of the account's history
//! ([`ImportHistory`]) answered as the import's job items have it now (DESIGN section
//! 15, History).
//!
//! The page token is the index sort key the page ended on (`IMPORT#{started_at}#…`),
//! base64url without padding: opaque to the caller, and checked before it is used, so a
//! made-up token is an invalid `next`, never a Query from an arbitrary key. Only read,
//! so not run through the ledger.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::answer::{ImportEntry, ImportsAnswer};
use super::error::{invalid, EventError};
use super::payload::{self, ImportsList};
use crate::domain::keys::{html_report_key, parse_import_index_sk, rows_report_key, summary_key};
use crate::domain::outcome::ImportStatus;
use crate::ports::{ImportHistory, Job, MAX_IMPORTS_PER_PAGE};

/// Imports per page when the event gives no `limit`.
const DEFAULT_LIMIT: usize = 20;

/// What an event asks for: the account, the page size and where the page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Request {
    account_id: String,
    limit: usize,
    /// The index sort key to start after; `None` for the newest.
    after: Option<String>,
}

/// The request an event asks for, or the first field that is wrong.
pub(super) fn request(event: ImportsList) -> Result<Request, EventError> {
    let account_id = payload::account_id(event.account_id)?;
    let limit = match event.limit.get() {
        None => DEFAULT_LIMIT,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_IMPORTS_PER_PAGE).contains(n))
            .ok_or_else(|| {
                invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_IMPORTS_PER_PAGE}"),
                )
            })?,
    };
    let after = event
        .next
        .into_option()
        .map(|token| after(&token))
        .transpose()?;
    Ok(Request {
        account_id,
        limit,
        after,
    })
}

/// The page token of the page ending on index sort key `sk`.
fn token(sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(sk)
}

/// The index sort key a page token names, or an invalid `next` (the token is not
/// repeated: it is the caller's, and it is not ours).
fn after(token: &str) -> Result<String, EventError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|sk| parse_import_index_sk(sk).is_some())
        .ok_or_else(|| {
            invalid(
                "next",
                "is not a page token of imports.list: send the `next` of the previous answer, or none for the first page",
            )
        })
}

/// One import as the answer lists it: the keys of the reports it wrote, none while it
/// runs. A failed import that read no row (a bad option, no phone column, a file too
/// large or of no known format) wrote no rows.csv.
fn entry(job: Job) -> ImportEntry {
    let finished = job.status != ImportStatus::Running;
    let read_rows = job.progress.rows.total > 0 || job.status != ImportStatus::Failed;
    let (account, id) = (&job.account_id, &job.import_id);
    ImportEntry {
        summary_key: finished.then(|| summary_key(account, id)),
        rows_report_key: (finished && read_rows).then(|| rows_report_key(account, id)),
        html_report_key: finished.then(|| html_report_key(account, id)),
        status: job.status,
        rows: job.progress.rows,
        source_key: job.source_key,
        started_at: job.started_at,
        finished_at: job.finished_at,
        import_id: job.import_id,
    }
}

/// Answers one page of the account's imports, newest first.
pub(super) async fn handle<H>(imports: &H, event: ImportsList) -> Result<ImportsAnswer, EventError>
where
    H: ImportHistory,
{
    let request = request(event)?;
    let page = imports
        .imports_page(&request.account_id, request.limit, request.after.as_deref())
        .await?;
    Ok(ImportsAnswer {
        imports: page.jobs.into_iter().map(entry).collect(),
        next: page.next.as_deref().map(token),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::{json, Value};

    use super::*;
    use crate::domain::keys::import_index_sk;
    use crate::domain::outcome::{ImportStatus, RowCounts};
    use crate::events::Event;
    use crate::ports::memory::MemoryJobs;
    use crate::ports::{JobProgress, JobStore};

    fn decoded(event: Value) -> Result<ImportsList, EventError> {
        match payload::decode(&event, None)? {
            Event::ImportsList(e) => Ok(e),
            other => panic!("not imports.list: {other:?}"),
        }
    }

    fn field_of<T: std::fmt::Debug>(result: Result<T, EventError>) -> (String, String) {
        match result {
            Err(EventError::InvalidField { field, problem }) => (field, problem),
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    /// Import `i` of `account`, started `i` seconds after 10:00; every third one still
    /// running.
    fn job(account: &str, i: u32) -> Job {
        let import_id = format!("imp_{:016x}", 0xacc0_0000 + i);
        let running = i.is_multiple_of(3);
        Job {
            account_id: account.into(),
            status: match running {
                true => ImportStatus::Running,
                false => ImportStatus::Completed,
            },
            progress: JobProgress {
                rows: RowCounts {
                    total: u64::from(i),
                    created: u64::from(i),
                    ..RowCounts::default()
                },
                ..JobProgress::default()
            },
            summary_key: summary_key(account, &import_id),
            completion_pending: false,
            source_key: format!("imports/{account}/whatsapp/{i}.csv"),
            started_at: format!("2026-11-21T10:{:02}:{:02}.000Z", i / 60, i % 60),
            finished_at: (!running).then(|| format!("2026-11-21T11:00:{:02}.000Z", i % 60)),
            lease_expires_at: 0,
            lease_token: String::new(),
            import_id,
        }
    }

    /// A job store holding `count` indexed imports of acme (1 to `count`, in a shuffled
    /// order) and one of another account, started last.
    async fn history(count: u32) -> MemoryJobs {
        let jobs = MemoryJobs::default();
        let mut order: Vec<u32> = (1..=count).collect();
        order.reverse();
        order.rotate_left(count as usize / 3);
        let other = job("other", count + 1);
        for job in order.into_iter().map(|i| job("acme", i)).chain([other]) {
            jobs.insert(job.clone());
            jobs.index_job(&job).await.expect("indexed");
        }
        jobs
    }

    async fn list(jobs: &MemoryJobs, event: Value) -> Result<Value, EventError> {
        let answer = handle(jobs, decoded(event)?).await?;
        Ok(serde_json::to_value(answer).expect("serialises"))
    }

    #[tokio::test]
    async fn twenty_five_imports_page_ten_ten_five_newest_first_and_never_anothers() {
        // GIVEN 25 imports of acme and one of another account, newer than all of them
        let jobs = history(25).await;

        // WHEN acme's imports are read 10 at a time, following `next`
        let mut pages = Vec::new();
        let mut next = Value::Null;
        loop {
            let event =
                json!({"type": "imports.list", "account_id": "acme", "limit": 10, "next": next});
            let page = list(&jobs, event).await.expect("a page");
            next = page.get("next").cloned().unwrap_or(Value::Null);
            let last = page.get("next").is_none();
            pages.push(page);
            if last {
                break;
            }
            assert!(pages.len() < 5, "paging ends");
        }

        // THEN the pages hold 10, 10 and 5, the last without `next`
        let sizes: Vec<usize> = pages
            .iter()
            .map(|p| p["imports"].as_array().map_or(0, Vec::len))
            .collect();
        assert_eq!(sizes, [10, 10, 5]);
        assert!(pages[..2].iter().all(|p| p["next"].is_string()));
        // AND together they are acme's 25 imports once each, newest first
        let listed: Vec<&Value> = pages
            .iter()
            .flat_map(|p| p["imports"].as_array().into_iter().flatten())
            .collect();
        let ids: Vec<String> = listed
            .iter()
            .map(|i| i["import_id"].as_str().unwrap_or_default().to_string())
            .collect();
        let expected: Vec<String> = (1..=25).rev().map(|i| job("acme", i).import_id).collect();
        assert_eq!(ids, expected);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 25);
        let started: Vec<&str> = listed
            .iter()
            .filter_map(|i| i["started_at"].as_str())
            .collect();
        assert!(started.windows(2).all(|w| w[0] > w[1]), "{started:?}");
        assert!(!ids.contains(&job("other", 26).import_id));
        // AND each import reads as its job item has it, with its report keys
        let newest = job("acme", 25);
        let id = &newest.import_id;
        assert_eq!(
            *listed[0],
            json!({"import_id": id, "status": "completed",
                "rows": {"total": 25, "created": 25, "updated": 0, "unchanged": 0,
                         "skipped_existing": 0, "skipped_new": 0, "duplicate_in_file": 0, "rejected": 0},
                "source_key": "imports/acme/whatsapp/25.csv",
                "started_at": "2026-11-21T10:00:25.000Z",
                "finished_at": "2026-11-21T11:00:25.000Z",
                "summary_key": format!("reports/acme/{id}/summary.json"),
                "rows_report_key": format!("reports/acme/{id}/rows.csv"),
                "html_report_key": format!("reports/acme/{id}/report.html")})
        );
        assert_eq!(listed[1]["status"], "running");
        assert_eq!(listed[1]["finished_at"], Value::Null);
    }

    #[tokio::test]
    async fn without_a_limit_a_page_is_twenty_and_a_full_last_page_has_no_next() {
        let jobs = history(20).await;
        let page = list(&jobs, json!({"type": "imports.list", "account_id": "acme"}))
            .await
            .expect("a page");
        assert_eq!(page["imports"].as_array().map(Vec::len), Some(20));
        assert!(page.get("next").is_none(), "{page}");
        // An account without imports has an empty history.
        let none = list(
            &jobs,
            json!({"type": "imports.list", "account_id": "nobody"}),
        );
        assert_eq!(none.await.expect("a page"), json!({"imports": []}));
    }

    #[tokio::test]
    async fn an_index_item_without_its_job_is_skipped_and_paging_goes_on_past_it() {
        // GIVEN 5 imports, the job item of the second newest gone
        let jobs = history(5).await;
        jobs.remove(&job("acme", 4).import_id);

        // WHEN they are read two at a time
        let first = list(
            &jobs,
            json!({"type": "imports.list", "account_id": "acme", "limit": 2}),
        )
        .await
        .expect("a page");
        let second = list(
            &jobs,
            json!({"type": "imports.list", "account_id": "acme", "limit": 2, "next": first["next"]}),
        )
        .await
        .expect("a page");

        // THEN the first page holds the newest alone, and the second goes on after the
        // missing one
        let ids = |page: &Value| -> Vec<String> {
            page["imports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["import_id"].as_str().map(str::to_string))
                .collect()
        };
        assert_eq!(ids(&first), [job("acme", 5).import_id]);
        assert_eq!(
            ids(&second),
            [job("acme", 3).import_id, job("acme", 2).import_id]
        );
        assert!(second["next"].is_string());
    }

    #[test]
    fn the_token_is_the_index_key_in_base64url_and_reads_back() {
        let sk = import_index_sk("2026-11-21T10:00:00.000Z", "imp_0123456789abcdef");
        let token = token(&sk);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(after(&token).expect("reads back"), sk);
    }

    #[test]
    fn limit_account_and_next_are_checked() {
        let event = |extra: Value| {
            let mut event = json!({"type": "imports.list", "account_id": "acme"});
            if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
                event.extend(extra.clone());
            }
            decoded(event).and_then(request)
        };
        // The documented event, and a limit at each end of its range.
        let first = event(json!({"limit": 20, "next": null})).expect("valid");
        assert_eq!(
            first,
            Request {
                account_id: "acme".into(),
                limit: 20,
                after: None
            }
        );
        assert_eq!(event(json!({"limit": 1})).map(|r| r.limit).ok(), Some(1));
        assert_eq!(
            event(json!({"limit": 100})).map(|r| r.limit).ok(),
            Some(100)
        );
        assert_eq!(
            event(json!({"limit": null})).map(|r| r.limit).ok(),
            Some(20)
        );
        let sk = import_index_sk("2026-11-21T10:00:00.000Z", "imp_0123456789abcdef");
        assert_eq!(
            event(json!({"next": token(&sk)})).map(|r| r.after).ok(),
            Some(Some(sk))
        );

        let bad_limit = "must be a whole number from 1 to 100";
        let bad_token = "is not a page token of imports.list: send the `next` of the previous answer, or none for the first page";
        for (extra, field, problem) in [
            (json!({"limit": 0}), "limit", bad_limit),
            (json!({"limit": 101}), "limit", bad_limit),
            (json!({"limit": -5}), "limit", bad_limit),
            (json!({"limit": u64::MAX}), "limit", bad_limit),
            (json!({"next": "not base64!"}), "next", bad_token),
            // base64url of "SETTINGS", and of an IMPORT# key that is not an index key
            (json!({"next": token("SETTINGS")}), "next", bad_token),
            (json!({"next": token("IMPORT#x#imp_1")}), "next", bad_token),
            (
                json!({"next": URL_SAFE_NO_PAD.encode([0xff, 0xfe])}),
                "next",
                bad_token,
            ),
            (
                json!({"account_id": "a b"}),
                "account_id",
                "must be 1-64 characters of A-Z a-z 0-9 _ -",
            ),
            (json!({"account_id": null}), "account_id", "is required"),
        ] {
            assert_eq!(
                field_of(event(extra.clone())),
                (field.to_string(), problem.to_string()),
                "{extra}"
            );
        }
    }
}
