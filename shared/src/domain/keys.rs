//! Every key format of the table and the bucket (DESIGN sections 4 and 9), in one place.
//! Pure functions: the services use them for what they report (a contact's `pk` in an
//! answer, a report's key in summary.json), the adapters for what they store.

use crate::domain::channel::Channel;

/// Sort key of a contact item.
pub const CONTACT_SK: &str = "PROFILE";
/// Sort key of an import job item.
pub const JOB_SK: &str = "JOB";
/// Sort key of an account settings item.
pub const SETTINGS_SK: &str = "SETTINGS";
/// Sort key of a processed-event item.
pub const EVENT_SK: &str = "SEEN";
/// Sort key of an erasure tombstone.
pub const SUPPRESS_SK: &str = "SUPPRESS";

/// Sort key of a BSUID alias item.
pub const ALIAS_SK: &str = "CONTACT";
/// Sort key of the item naming the account of a WhatsApp business number.
pub const WABA_SK: &str = "ACCOUNT";
pub use crate::domain::whatsapp::{bsuid_key, BSUID_KEY_PREFIX};

/// Partition key of a BSUID alias: `ALIAS#{account_id}#whatsapp#{user_id}`.
pub fn alias_pk(account_id: &str, user_id: &str) -> String {
    format!("ALIAS#{account_id}#whatsapp#{user_id}")
}

/// Partition key of the item naming the account a WhatsApp business number
/// (`phone_number_id`) belongs to.
pub fn waba_pk(phone_number_id: &str) -> String {
    format!("WABA#{phone_number_id}")
}

/// Partition key of a contact item.
pub fn contact_pk(account_id: &str, channel: Channel, e164: &str) -> String {
    format!("CONTACT#{account_id}#{}#{e164}", channel.as_str())
}

/// Partition key of an import job item.
pub fn job_pk(account_id: &str, import_id: &str) -> String {
    format!("IMPORT#{account_id}#{import_id}")
}

/// Partition key of an account's settings item.
pub fn settings_pk(account_id: &str) -> String {
    account_pk(account_id)
}

/// Partition key of an account's own items: its settings and the index of its imports.
pub fn account_pk(account_id: &str) -> String {
    format!("ACCOUNT#{account_id}")
}

/// Sort key prefix of the index items of an account's imports (under [`account_pk`]).
pub const IMPORT_INDEX_PREFIX: &str = "IMPORT#";

/// Sort key of an import's index item under [`account_pk`]:
/// `IMPORT#{started_at}#{import_id}`. `started_at` is RFC 3339 UTC with milliseconds
/// (always the same width), so the account's imports sort by the time they started,
/// ties by import id.
pub fn import_index_sk(started_at: &str, import_id: &str) -> String {
    format!("{IMPORT_INDEX_PREFIX}{started_at}#{import_id}")
}

/// The start time and import id of an index sort key made by [`import_index_sk`];
/// `None` for anything else (a page token someone made up).
pub fn parse_import_index_sk(sk: &str) -> Option<(&str, &str)> {
    let (started_at, import_id) = sk.strip_prefix(IMPORT_INDEX_PREFIX)?.rsplit_once('#')?;
    chrono::DateTime::parse_from_rfc3339(started_at).ok()?;
    is_import_id(import_id).then_some((started_at, import_id))
}

/// Whether `id` is an import id as imports make them: `imp_` and 16 lower-case hex
/// digits.
pub fn is_import_id(id: &str) -> bool {
    let hex = id.strip_prefix("imp_").unwrap_or("");
    hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Partition key of a processed-event item.
pub fn event_pk(account_id: &str, event_key: &str) -> String {
    format!("EVENT#{account_id}#{event_key}")
}

/// Partition key of an erasure tombstone: the number only as its HMAC digest.
pub fn suppress_pk(account_id: &str, channel: Channel, digest: &str) -> String {
    format!("SUPPRESS#{account_id}#{}#{digest}", channel.as_str())
}
/// The GSI that lists an account's contacts.
pub const BY_ACCOUNT_INDEX: &str = "by_account";
/// How many `by_account` partitions an account's contacts are spread over.
pub const GSI_SHARDS: u8 = 16;

/// The `by_account` GSI partition of a contact: `{account_id}#{shard}`.
pub fn gsi1pk(account_id: &str, e164: &str) -> String {
    format!("{account_id}#{}", gsi_shard(e164))
}

/// The `by_account` GSI partition `shard` (0 to [`GSI_SHARDS`] - 1) of an account.
pub fn gsi1pk_of_shard(account_id: &str, shard: u8) -> String {
    format!("{account_id}#{shard:02}")
}

/// The `by_account` GSI sort key prefix of a channel's contacts.
pub fn gsi1sk_prefix(channel: Channel) -> String {
    format!("{}#", channel.as_str())
}

/// The `by_account` GSI sort key of a contact: `{channel}#{e164}`.
pub fn gsi1sk(channel: Channel, e164: &str) -> String {
    format!("{}#{e164}", channel.as_str())
}

/// The `by_account` GSI shard of a number: a stable hash (FNV-1a) mod 16, two digits.
pub fn gsi_shard(e164: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in e164.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{:02}", hash % 16)
}

/// Key of an export's CSV file.
pub fn export_key(account_id: &str, export_id: &str) -> String {
    format!("exports/{account_id}/{export_id}.csv")
}

/// Key of an import's summary.json.
pub fn summary_key(account_id: &str, import_id: &str) -> String {
    format!("reports/{account_id}/{import_id}/summary.json")
}

/// Key of an import's rows.csv.
pub fn rows_report_key(account_id: &str, import_id: &str) -> String {
    format!("reports/{account_id}/{import_id}/rows.csv")
}

/// Sort key of a mapping saved under a header signature, in the account's partition
/// ([`settings_pk`]; DESIGN section 15).
pub fn mapping_sk(signature: &str) -> String {
    format!("MAPPING#{signature}")
}

/// Key of report.html, the page a person reads (DESIGN section 15).
pub fn html_report_key(account_id: &str, import_id: &str) -> String {
    format!("reports/{account_id}/{import_id}/report.html")
}

/// Key of part `n` (from 0) of an unfinished import's rows.csv: its lines up to one
/// checkpoint, from which a resumed run starts its report. Deleted when the import ends.
pub fn rows_report_part_key(account_id: &str, import_id: &str, n: u32) -> String {
    format!("reports/{account_id}/{import_id}/rows.csv.parts/{n:05}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_contract() {
        assert_eq!(
            contact_pk("acme", Channel::Whatsapp, "+447911123456"),
            "CONTACT#acme#whatsapp#+447911123456"
        );
        assert_eq!(job_pk("acme", "imp_1"), "IMPORT#acme#imp_1");
        assert_eq!(settings_pk("acme"), "ACCOUNT#acme");
        assert_eq!(event_pk("acme", "msg:1"), "EVENT#acme#msg:1");
        assert_eq!(
            suppress_pk("acme", Channel::Sms, "ab12"),
            "SUPPRESS#acme#sms#ab12"
        );
        assert_eq!(gsi1sk(Channel::Sms, "+1"), "sms#+1");
        assert_eq!(summary_key("a", "i"), "reports/a/i/summary.json");
        assert_eq!(rows_report_key("a", "i"), "reports/a/i/rows.csv");
        assert_eq!(export_key("a", "exp_1"), "exports/a/exp_1.csv");
        assert_eq!(gsi1sk_prefix(Channel::Voice), "voice#");
        assert_eq!(account_pk("acme"), "ACCOUNT#acme");
        assert_eq!(
            import_index_sk("2026-11-21T10:00:00.000Z", "imp_0123456789abcdef"),
            "IMPORT#2026-11-21T10:00:00.000Z#imp_0123456789abcdef"
        );
    }

    #[test]
    fn an_import_index_key_reads_back_and_nothing_else_does() {
        let sk = import_index_sk("2026-11-21T10:00:00.000Z", "imp_0123456789abcdef");
        assert_eq!(
            parse_import_index_sk(&sk),
            Some(("2026-11-21T10:00:00.000Z", "imp_0123456789abcdef"))
        );
        for other in [
            "",
            "IMPORT#",
            "JOB",
            "SETTINGS",
            "MAPPING#ab12",
            "IMPORT#imp_0123456789abcdef",
            "IMPORT#yesterday#imp_0123456789abcdef",
            "IMPORT#2026-11-21T10:00:00.000Z#imp_0123",
            "IMPORT#2026-11-21T10:00:00.000Z#imp_0123456789ABCDEF",
            "import#2026-11-21T10:00:00.000Z#imp_0123456789abcdef",
        ] {
            assert_eq!(parse_import_index_sk(other), None, "{other:?}");
        }
    }

    #[test]
    fn index_keys_of_the_same_width_sort_by_start_time() {
        let mut keys = [
            import_index_sk("2026-11-21T10:00:01.000Z", "imp_0000000000000000"),
            import_index_sk("2026-11-21T09:59:59.999Z", "imp_ffffffffffffffff"),
            import_index_sk("2026-11-21T10:00:00.500Z", "imp_1111111111111111"),
        ];
        keys.sort();
        let ids: Vec<_> = keys
            .iter()
            .filter_map(|sk| parse_import_index_sk(sk).map(|(_, id)| id))
            .collect();
        assert_eq!(
            ids,
            [
                "imp_ffffffffffffffff",
                "imp_1111111111111111",
                "imp_0000000000000000"
            ]
        );
    }

    #[test]
    fn shard_is_stable_and_two_digits() {
        let shard = gsi_shard("+447911123456");
        assert_eq!(shard.len(), 2);
        assert_eq!(shard, gsi_shard("+447911123456"));
        assert!(shard.parse::<u8>().is_ok_and(|s| s < 16));
        assert_eq!(gsi1pk("acme", "+447911123456"), format!("acme#{shard}"));
        // Listing by shard names the same partitions contacts are written to.
        let listed: Vec<String> = (0..GSI_SHARDS)
            .map(|s| gsi1pk_of_shard("acme", s))
            .collect();
        assert_eq!(listed.len(), 16);
        assert!(listed.contains(&gsi1pk("acme", "+447911123456")));
        assert_eq!(listed[0], "acme#00");
        assert_eq!(listed[15], "acme#15");
    }
}
