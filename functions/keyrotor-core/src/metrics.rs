//! keyrotor's CloudWatch metrics, written as CloudWatch Embedded Metric Format (EMF) lines
//! on a function's standard output: CloudWatch Logs turns each line into metric data, so
//! metrics cost no API call and no permission. One namespace, [`NAMESPACE`]; dimensions of
//! low cardinality only (a rotation's outcome), never a user name or key ID.
//!
//! A scan's figures are written once per page (by `assess-key-age` and `start-rotations`):
//! their `Sum` over a scan is the scan's total, and `OldestKeyAgeDays`' `Maximum` is the
//! scan's oldest key. A rotation's outcome is written by `notify` when it reports it. EMF
//! delivers at least once, and a retried step writes its line again: the figures are for
//! dashboards and alarms, the execution history stays the record. Dry runs write nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// Whether [`Emf::emit`] writes: only in a function, where `keyrotor-lambda` turns it on
/// at the cold start (tests and the CLI build the lines and write none).
static STDOUT: AtomicBool = AtomicBool::new(false);

/// Turns on writing metric lines to standard output (a function's cold start).
pub fn write_to_stdout() {
    STDOUT.store(true, Ordering::Relaxed);
}

/// The CloudWatch namespace of every keyrotor metric.
pub const NAMESPACE: &str = "keyrotor";

/// The dimension of the rotation metrics.
pub const OUTCOME_DIMENSION: &str = "Outcome";

/// Every metric keyrotor writes. The dashboard and alarms in `infra/template.yaml` may use
/// only these names (a test holds them to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Users a scan looked at.
    UsersSeen,
    /// Users whose key a scan found due for rotation.
    KeysDue,
    /// Users a scan found due a warning.
    Warned,
    /// Users whose due action is blocked (reported to owner and admin).
    Blocked,
    /// Users exempt from rotation.
    Exempt,
    /// Active keys past the rotation age whose user is not exempt.
    NonCompliantKeys,
    /// The age of the oldest active key a scan saw, exempt users' included.
    OldestKeyAgeDays,
    /// Per-user executions a scan started to rotate a key (or finish a rotation).
    RotationsStarted,
    /// One per rotation outcome, by the `Outcome` dimension.
    Rotations,
    /// From the execution's start to the outcome, by the `Outcome` dimension.
    RotationDuration,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::UsersSeen,
        Metric::KeysDue,
        Metric::Warned,
        Metric::Blocked,
        Metric::Exempt,
        Metric::NonCompliantKeys,
        Metric::OldestKeyAgeDays,
        Metric::RotationsStarted,
        Metric::Rotations,
        Metric::RotationDuration,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::UsersSeen => "UsersSeen",
            Metric::KeysDue => "KeysDue",
            Metric::Warned => "Warned",
            Metric::Blocked => "Blocked",
            Metric::Exempt => "Exempt",
            Metric::NonCompliantKeys => "NonCompliantKeys",
            Metric::OldestKeyAgeDays => "OldestKeyAgeDays",
            Metric::RotationsStarted => "RotationsStarted",
            Metric::Rotations => "Rotations",
            Metric::RotationDuration => "RotationDuration",
        }
    }

    /// Whether the metric is written per rotation `Outcome` (one CloudWatch metric per
    /// outcome) rather than without dimensions.
    pub fn per_outcome(self) -> bool {
        matches!(self, Metric::Rotations | Metric::RotationDuration)
    }

    /// How many CloudWatch metrics (name and dimension values) keyrotor writes in all: what
    /// CloudWatch bills as custom metrics.
    pub fn cloudwatch_metrics() -> usize {
        Metric::ALL
            .iter()
            .map(|m| {
                if m.per_outcome() {
                    Outcome::ALL.len()
                } else {
                    1
                }
            })
            .sum()
    }

    /// The CloudWatch unit. Ages are counts of days: CloudWatch has no day unit.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::RotationDuration => "Seconds",
            _ => "Count",
        }
    }
}

/// How a rotation ended, as the `Outcome` dimension names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The new key is stored and the old one deactivated.
    Rotated,
    /// The old key was deleted after the delay.
    Deleted,
    /// The old key was kept (reactivated, or used after deactivation).
    Kept,
    /// The execution failed (the admin was told).
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Rotated,
        Outcome::Deleted,
        Outcome::Kept,
        Outcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Rotated => "rotated",
            Outcome::Deleted => "deleted",
            Outcome::Kept => "kept",
            Outcome::Failed => "failed",
        }
    }
}

/// One EMF document: values of some metrics, at one time, under one set of dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Emf {
    at: DateTime<Utc>,
    dimensions: Vec<(&'static str, String)>,
    values: Vec<(Metric, f64)>,
}

impl Emf {
    pub fn new(at: DateTime<Utc>) -> Self {
        Emf {
            at,
            dimensions: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Adds a dimension (a name from this module and a value from a fixed set).
    pub fn dimension(mut self, name: &'static str, value: &str) -> Self {
        self.dimensions.push((name, value.to_owned()));
        self
    }

    pub fn value(mut self, metric: Metric, value: f64) -> Self {
        self.values.push((metric, value));
        self
    }

    /// The figures of one outcome of one rotation: a count of one and its duration.
    pub fn rotation(
        at: DateTime<Utc>,
        outcome: Outcome,
        started_at: Option<DateTime<Utc>>,
    ) -> Self {
        let emf = Emf::new(at)
            .dimension(OUTCOME_DIMENSION, outcome.as_str())
            .value(Metric::Rotations, 1.0);
        match started_at {
            Some(start) if start <= at => {
                // Milliseconds, then seconds: a fraction of a second is kept.
                let millis = (at - start).num_milliseconds();
                emf.value(Metric::RotationDuration, millis as f64 / 1000.0)
            }
            _ => emf,
        }
    }

    pub fn values(&self) -> &[(Metric, f64)] {
        &self.values
    }

    /// The document as one line of JSON, as CloudWatch Logs expects it.
    pub fn to_line(&self) -> String {
        let mut root = Map::new();
        let metrics: Vec<Value> = self
            .values
            .iter()
            .map(|(m, _)| json!({"Name": m.name(), "Unit": m.unit()}))
            .collect();
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| *n).collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimension_names],
                    "Metrics": metrics,
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            root.insert((*name).into(), Value::String(value.clone()));
        }
        for (metric, value) in &self.values {
            root.insert(metric.name().into(), json!(value));
        }
        Value::Object(root).to_string()
    }

    /// Writes the line to standard output, where the Lambda service hands it to CloudWatch
    /// Logs (once [`write_to_stdout`] is on). Not through the log subscriber: EMF must be a line of its own, not a field of a
    /// log record. A document without values writes nothing.
    pub fn emit(&self) {
        if self.values.is_empty() || !STDOUT.load(Ordering::Relaxed) {
            return;
        }
        let mut out = std::io::stdout().lock();
        // A metric that cannot be written must never fail the step.
        let _ = writeln!(out, "{}", self.to_line());
    }
}

/// One EMF line read back: its dimensions and values, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub dimensions: Vec<(String, String)>,
    pub values: Vec<(String, f64)>,
}

/// The metric values of an EMF line, if `line` is one in keyrotor's namespace: the function
/// logs' reader (tests, the demo) uses it.
pub fn parse_line(line: &str) -> Option<Parsed> {
    let doc: Value = serde_json::from_str(line.trim()).ok()?;
    let directive = doc.get("_aws")?.get("CloudWatchMetrics")?.get(0)?;
    if directive.get("Namespace")?.as_str()? != NAMESPACE {
        return None;
    }
    let dimensions = directive
        .get("Dimensions")?
        .get(0)?
        .as_array()?
        .iter()
        .filter_map(|d| {
            let name = d.as_str()?;
            Some((name.to_owned(), doc.get(name)?.as_str()?.to_owned()))
        })
        .collect();
    let values = directive
        .get("Metrics")?
        .as_array()?
        .iter()
        .filter_map(|m| {
            let name = m.get("Name")?.as_str()?;
            Some((name.to_owned(), doc.get(name)?.as_f64()?))
        })
        .collect();
    Some(Parsed { dimensions, values })
}

/// Metric lines as the dashboard reads them: each scan figure's sum and maximum over the
/// lines without dimensions (one per scan page), and for each rotation outcome how many
/// there were and their total duration in seconds. The demo prints it; the end-to-end test
/// holds it to the scan's summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub scan: BTreeMap<String, (f64, f64)>,
    pub outcomes: BTreeMap<String, (usize, f64)>,
}

impl Summary {
    pub fn of(lines: &[Parsed]) -> Self {
        let mut summary = Summary::default();
        for line in lines {
            match line.dimensions.as_slice() {
                [] => {
                    for (name, value) in &line.values {
                        let entry = summary.scan.entry(name.clone()).or_insert((0.0, f64::MIN));
                        entry.0 += value;
                        entry.1 = entry.1.max(*value);
                    }
                }
                [(dimension, outcome)] if dimension == OUTCOME_DIMENSION => {
                    let entry = summary.outcomes.entry(outcome.clone()).or_default();
                    entry.0 += 1;
                    entry.1 += line
                        .values
                        .iter()
                        .find(|(n, _)| n == Metric::RotationDuration.name())
                        .map_or(0.0, |(_, v)| *v);
                }
                _ => {}
            }
        }
        summary
    }

    /// A scan figure summed over the lines (0 when none wrote it).
    pub fn sum(&self, metric: Metric) -> f64 {
        self.scan.get(metric.name()).map_or(0.0, |(sum, _)| *sum)
    }

    /// A scan figure's largest value, if any line wrote it.
    pub fn max(&self, metric: Metric) -> Option<f64> {
        self.scan.get(metric.name()).map(|(_, max)| *max)
    }

    /// How many rotations ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.outcomes.get(outcome.as_str()).map_or(0, |(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_line_is_an_emf_document_cloudwatch_can_read() {
        let line = Emf::new(at())
            .value(Metric::UsersSeen, 31.0)
            .value(Metric::OldestKeyAgeDays, 150.0)
            .to_line();
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).expect("JSON");
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], at().timestamp_millis());
        assert_eq!(directive["Namespace"], "keyrotor");
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "UsersSeen", "Unit": "Count"}, {"Name": "OldestKeyAgeDays", "Unit": "Count"}])
        );
        // Every metric the directive names is a member of the root (the spec's rule).
        assert_eq!(doc["UsersSeen"], 31.0);
        assert_eq!(doc["OldestKeyAgeDays"], 150.0);
    }

    #[test]
    fn a_rotation_outcome_carries_its_dimension_and_duration() {
        let started = at() - chrono::Duration::milliseconds(42_500);
        let line = Emf::rotation(at(), Outcome::Rotated, Some(started)).to_line();
        let parsed = parse_line(&line).expect("ours");
        assert_eq!(
            parsed.dimensions,
            [("Outcome".to_owned(), "rotated".to_owned())]
        );
        assert_eq!(
            parsed.values,
            [
                ("Rotations".to_owned(), 1.0),
                ("RotationDuration".to_owned(), 42.5)
            ]
        );
        let doc: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Outcome"]])
        );
        // A start after the outcome (a clock skew) gives no duration rather than a negative one.
        let skewed = Emf::rotation(
            at(),
            Outcome::Failed,
            Some(at() + chrono::Duration::seconds(5)),
        );
        assert_eq!(skewed.values().len(), 1);
    }

    #[test]
    fn a_summary_sums_the_pages_and_counts_the_outcomes() {
        let lines: Vec<Parsed> = [
            Emf::new(at())
                .value(Metric::UsersSeen, 1000.0)
                .value(Metric::OldestKeyAgeDays, 95.0),
            Emf::new(at())
                .value(Metric::UsersSeen, 31.0)
                .value(Metric::OldestKeyAgeDays, 150.0),
            Emf::rotation(
                at(),
                Outcome::Rotated,
                Some(at() - chrono::Duration::seconds(10)),
            ),
            Emf::rotation(
                at(),
                Outcome::Rotated,
                Some(at() - chrono::Duration::seconds(20)),
            ),
        ]
        .iter()
        .filter_map(|e| parse_line(&e.to_line()))
        .collect();
        let summary = Summary::of(&lines);
        assert_eq!(summary.sum(Metric::UsersSeen), 1031.0);
        assert_eq!(summary.max(Metric::OldestKeyAgeDays), Some(150.0));
        assert_eq!(summary.max(Metric::KeysDue), None);
        assert_eq!(summary.count(Outcome::Rotated), 2);
        assert_eq!(summary.count(Outcome::Failed), 0);
        assert_eq!(summary.outcomes["rotated"].1, 30.0);
    }

    #[test]
    fn other_log_lines_are_not_metrics() {
        for line in [
            "",
            " INFO assessed user=alice",
            "{\"level\":\"INFO\"}",
            "{\"_aws\":{\"CloudWatchMetrics\":[{\"Namespace\":\"other\",\"Dimensions\":[[]],\"Metrics\":[]}]}}",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }

    #[test]
    fn sixteen_metrics_are_billed() {
        // 8 per scan, and 2 per rotation outcome times 4 outcomes.
        assert_eq!(Metric::cloudwatch_metrics(), 16);
    }

    #[test]
    fn metric_names_are_distinct() {
        let mut names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
    }
}
