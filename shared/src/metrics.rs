//! CloudWatch metrics in the embedded metric format (EMF): one JSON line on standard
//! output, which Lambda's log agent turns into metrics without a `PutMetricData` call
//! (no request, no latency, no IAM grant).

use serde_json::{json, Map, Value};

/// The namespace of every metric the functions emit.
pub const NAMESPACE: &str = "ContactBook";

/// One EMF line: `metrics` (name, value, unit) under `dimensions` (name, value), with
/// `properties` searchable in the log but not metrics.
pub fn emf_line(
    dimensions: &[(&str, &str)],
    metrics: &[(&str, f64, &str)],
    properties: &[(&str, &str)],
    timestamp_ms: i64,
) -> String {
    let metrics: Vec<(&str, Value, &str)> = metrics
        .iter()
        .map(|(name, value, unit)| (*name, json!(value), *unit))
        .collect();
    line(dimensions, &metrics, properties, timestamp_ms)
}

/// One EMF line holding many values of one metric (EMF's array form, at most
/// [`MAX_VALUES`] a line): CloudWatch counts each value as a sample.
pub fn emf_values_line(
    dimensions: &[(&str, &str)],
    (name, values, unit): (&str, &[f64], &str),
    timestamp_ms: i64,
) -> String {
    line(
        dimensions,
        &[(name, json!(values), unit)],
        &[],
        timestamp_ms,
    )
}

/// EMF's limit of values in one metric's array.
pub const MAX_VALUES: usize = 100;

fn line(
    dimensions: &[(&str, &str)],
    metrics: &[(&str, Value, &str)],
    properties: &[(&str, &str)],
    timestamp_ms: i64,
) -> String {
    let mut line = Map::new();
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": definitions,
            }],
        }),
    );
    for (name, value) in dimensions.iter().chain(properties) {
        line.insert((*name).into(), json!(value));
    }
    for (name, value, _) in metrics {
        line.insert((*name).into(), value.clone());
    }
    Value::Object(line).to_string()
}

/// Writes `line` to standard output, where Lambda's log agent reads EMF.
pub fn emit(line: &str) {
    println!("{line}");
}

/// Now, in milliseconds since the epoch (EMF's `Timestamp`).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_declares_its_metrics_and_dimensions_and_carries_their_values() {
        let line = emf_line(
            &[("Function", "import-contacts")],
            &[("WriteUnits", 12.5, "Count"), ("Requests", 3.0, "Count")],
            &[("import_id", "imp_1")],
            1_764_000_000_000,
        );
        let parsed: Value = serde_json::from_str(&line).expect("JSON");
        let declared = &parsed["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "ContactBook");
        assert_eq!(declared["Dimensions"], json!([["Function"]]));
        assert_eq!(
            declared["Metrics"][0],
            json!({"Name": "WriteUnits", "Unit": "Count"})
        );
        assert_eq!(parsed["Function"], "import-contacts");
        assert_eq!(parsed["WriteUnits"], 12.5);
        assert_eq!(parsed["import_id"], "imp_1");
        assert_eq!(parsed["_aws"]["Timestamp"], 1_764_000_000_000_i64);
    }

    #[test]
    fn a_values_line_carries_every_value_of_its_metric_as_an_array() {
        let line = emf_values_line(
            &[("Function", "contact-events")],
            ("WebhookDelayMs", &[12.0, 40.0, 7.0], "Milliseconds"),
            1_764_000_000_000,
        );
        let parsed: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            parsed["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
            json!({"Name": "WebhookDelayMs", "Unit": "Milliseconds"})
        );
        assert_eq!(parsed["WebhookDelayMs"], json!([12.0, 40.0, 7.0]));
        assert_eq!(parsed["Function"], "contact-events");
    }
}
