//! Reports that an access key was found in a public place, as AWS delivers them on
//! EventBridge, read into the input of a forced per-user rotation.
//!
//! - AWS Health: `source` `aws.health`, `detail.eventTypeCode`
//!   `AWS_RISK_CREDENTIALS_EXPOSED`; the key in `detail.affectedEntities[].entityValue`,
//!   when it started in `detail.startTime` (RFC 1123), where it was found in
//!   `detail.eventMetadata.exposedUrl` when AWS says.
//! - Trusted Advisor's "Exposed Access Keys" check: `source` `aws.trustedadvisor`,
//!   `detail.check-name` "Exposed Access Keys", `detail.status` `ERROR`; the key in
//!   `detail.check-item-detail."Access Key ID"`, the time in "Time Updated" (epoch
//!   milliseconds), the place in "Location".
//!
//! Anything else is `InvalidInput`: a rule delivering the wrong events must not rotate
//! anyone's key.
//!
//! An event's shape proves nothing: whoever may invoke respond-to-exposure, put a target on
//! its rules or start the responder machine can write one (issue 26, M9). So a report is
//! acted on as AWS confirms it ([`Confirmation`], asked by assess-key-age of AWS Health
//! before anything changes): a confirmed report's time and place are AWS's; an unconfirmed
//! one is quoted nowhere, and against an exempt user it is blocked for a person's decision;
//! one AWS denies changes nothing.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::payload::{KeyId, Text};
use crate::{Error, Result};

/// Who reported the exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reporter {
    AwsHealth,
    TrustedAdvisor,
}

impl Reporter {
    pub fn name(self) -> &'static str {
        match self {
            Reporter::AwsHealth => "AWS Health",
            Reporter::TrustedAdvisor => "AWS Trusted Advisor",
        }
    }
}

/// One reported exposure of one access key. It travels in the forced rotation's input
/// (`exposure`), so it is read back from JSON with the same checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exposure {
    pub access_key_id: KeyId,
    pub reporter: Reporter,
    /// When AWS says the exposure started (Health) or was last updated (Trusted Advisor).
    pub reported_at: DateTime<Utc>,
    /// Where AWS says the key was found, if it says.
    #[serde(default)]
    pub found_at: Option<Text>,
    /// The AWS Health event that reported it (`arn:aws:health:…:event/…`), by which
    /// assess-key-age asks AWS Health whether the report is real.
    #[serde(default)]
    pub event_arn: Option<Text>,
}

/// What AWS says about a reported exposure, asked before anything is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// AWS names the key in the report's event, in this account: the time and place are
    /// AWS's own.
    Confirmed {
        reported_at: DateTime<Utc>,
        found_at: Option<Text>,
    },
    /// AWS could not be asked (why): the report names no AWS Health event, comes from
    /// Trusted Advisor, or the account's support plan gives no access to the Health API.
    Unconfirmed(String),
    /// AWS was asked and does not know the report (why): it was not AWS's.
    Refuted(String),
}

/// What AWS Health answers about one event ARN, in the account asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthAnswer {
    /// The account cannot ask (why): no support plan with the Health API, or a role or
    /// SCP that forbids the call.
    NoAccess(String),
    /// AWS Health has no such event in this account.
    Unknown,
    Event(HealthEvent),
}

/// An AWS Health event as DescribeEventDetails and DescribeAffectedEntities give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    pub event_type_code: String,
    pub start_time: Option<DateTime<Utc>>,
    /// `eventMetadata.exposedUrl`.
    pub exposed_url: Option<String>,
    /// The affected entities' values (for an exposure, the key IDs).
    pub entities: Vec<String>,
}

/// Why AWS Health cannot be asked in an account whose support plan lacks its API (AWS
/// answers SubscriptionRequiredException).
pub const NO_HEALTH_PLAN: &str =
    "this account's support plan gives no access to the AWS Health API";

/// The event type AWS Health reports an exposed access key with.
pub const EXPOSED_EVENT_TYPE: &str = "AWS_RISK_CREDENTIALS_EXPOSED";

/// Whether AWS confirms `exposure`, given what AWS Health answered about its event (`None`:
/// there was nothing to ask, the report names no event or comes from Trusted Advisor).
pub fn confirmation(exposure: &Exposure, answer: Option<HealthAnswer>) -> Confirmation {
    let key = exposure.access_key_id.as_str();
    let arn = exposure.event_arn.as_ref().map_or("", |a| a.as_str());
    match answer {
        None if exposure.reporter == Reporter::TrustedAdvisor => Confirmation::Unconfirmed(
            "keyrotor confirms AWS Health's reports only, and this one is said to come from \
             Trusted Advisor"
                .to_owned(),
        ),
        None => Confirmation::Unconfirmed("the report names no AWS Health event".to_owned()),
        Some(HealthAnswer::NoAccess(why)) => Confirmation::Unconfirmed(why),
        Some(HealthAnswer::Unknown) => {
            Confirmation::Refuted(format!("AWS Health has no event {arn} in this account"))
        }
        Some(HealthAnswer::Event(event)) if event.event_type_code != EXPOSED_EVENT_TYPE => {
            Confirmation::Refuted(format!(
                "AWS Health's event {arn} is not an {EXPOSED_EVENT_TYPE} event"
            ))
        }
        Some(HealthAnswer::Event(event)) if !event.entities.iter().any(|e| e == key) => {
            Confirmation::Refuted(format!("AWS Health's event {arn} does not name {key}"))
        }
        Some(HealthAnswer::Event(event)) => Confirmation::Confirmed {
            reported_at: event.start_time.unwrap_or(exposure.reported_at),
            found_at: event.exposed_url.as_deref().and_then(printable_place),
        },
    }
}

impl Exposure {
    /// The event AWS Health can be asked about: a Health report's event ARN.
    pub fn health_event(&self) -> Option<&str> {
        match self.reporter {
            Reporter::AwsHealth => self.event_arn.as_ref().map(Text::as_str),
            Reporter::TrustedAdvisor => None,
        }
    }

    /// The exposure as it may be quoted once AWS has answered: a confirmed report with AWS's
    /// time and place, any other without the place (a forged report's text reaches no mail).
    pub fn vetted(mut self, confirmation: &Confirmation) -> Exposure {
        match confirmation {
            Confirmation::Confirmed {
                reported_at,
                found_at,
            } => {
                self.reported_at = *reported_at;
                self.found_at = found_at.clone();
            }
            Confirmation::Unconfirmed(_) | Confirmation::Refuted(_) => self.found_at = None,
        }
        self
    }

    /// The input of the forced per-user execution that rotates the exposed key.
    pub fn execution_input(&self) -> Value {
        json!({
            "accessKeyId": self.access_key_id,
            "force": true,
            "reason": format!("{} reported the key as exposed", self.reporter.name()),
            "exposure": self,
        })
    }

    /// The name of the execution that rotates the key for this report: the same report
    /// delivered twice names the same execution, which Step Functions starts once.
    pub fn execution_name(&self) -> String {
        format!(
            "exposed-{}-{}",
            self.access_key_id,
            self.reported_at.format("%Y%m%dT%H%M%SZ")
        )
    }
}

/// Reads an EventBridge event into the exposure it reports.
pub fn parse_event(event: &Value) -> Result<Exposure> {
    let detail = &event["detail"];
    match (event["source"].as_str(), event["detail-type"].as_str()) {
        (Some("aws.health"), Some("AWS Health Event")) => health(detail),
        (Some("aws.trustedadvisor"), Some("Trusted Advisor Check Item Refresh Notification")) => {
            trusted_advisor(detail)
        }
        _ => Err(invalid("not an AWS Health or Trusted Advisor event")),
    }
}

fn health(detail: &Value) -> Result<Exposure> {
    if detail["eventTypeCode"].as_str() != Some("AWS_RISK_CREDENTIALS_EXPOSED") {
        return Err(invalid("not an AWS_RISK_CREDENTIALS_EXPOSED event"));
    }
    let entities = detail["affectedEntities"]
        .as_array()
        .ok_or_else(|| invalid("the event names no affected entity"))?;
    let [entity] = entities.as_slice() else {
        return Err(invalid("the event must name exactly one access key"));
    };
    let key = key_id(&entity["entityValue"])?;
    let started = detail["startTime"]
        .as_str()
        .ok_or_else(|| invalid("the event has no startTime"))?;
    let reported_at = DateTime::parse_from_rfc2822(started)
        .or_else(|_| DateTime::parse_from_rfc3339(started))
        .map_err(|_| invalid("the event's startTime is not a date"))?
        .with_timezone(&Utc);
    Ok(Exposure {
        access_key_id: key,
        reporter: Reporter::AwsHealth,
        reported_at,
        found_at: place(&detail["eventMetadata"]["exposedUrl"]),
        event_arn: health_event_arn(&detail["eventArn"])?,
    })
}

fn trusted_advisor(detail: &Value) -> Result<Exposure> {
    if detail["check-name"].as_str() != Some("Exposed Access Keys") {
        return Err(invalid("not the Exposed Access Keys check"));
    }
    if detail["status"].as_str() != Some("ERROR") {
        return Err(invalid(
            "the check reports no exposed key (status is not ERROR)",
        ));
    }
    let item = &detail["check-item-detail"];
    let key = key_id(&item["Access Key ID"])?;
    let updated: i64 = item["Time Updated"]
        .as_str()
        .and_then(|ms| ms.parse().ok())
        .ok_or_else(|| invalid("the check item has no Time Updated"))?;
    let reported_at = Utc
        .timestamp_millis_opt(updated)
        .single()
        .ok_or_else(|| invalid("the check item's Time Updated is not a time"))?;
    Ok(Exposure {
        access_key_id: key,
        reporter: Reporter::TrustedAdvisor,
        reported_at,
        found_at: place(&item["Location"]),
        event_arn: None,
    })
}

/// A long-term IAM user key: `AKIA` and 16 more upper-case letters or digits. Temporary
/// credentials (`ASIA…`) are not a user's key to rotate.
fn key_id(value: &Value) -> Result<KeyId> {
    let text = value
        .as_str()
        .ok_or_else(|| invalid("the event names no access key ID"))?;
    if !(text.len() == 20 && text.starts_with("AKIA")) {
        return Err(invalid("the event names no IAM user access key (AKIA…)"));
    }
    KeyId::try_from(text.to_owned()).map_err(Error::InvalidInput)
}

/// The event's ARN, if it gives one: `arn:<partition>:health:<region>::event/…`.
fn health_event_arn(value: &Value) -> Result<Option<Text>> {
    let Some(text) = value.as_str() else {
        return Ok(None);
    };
    let looks_right = text.split(':').nth(2) == Some("health")
        && text.starts_with("arn:aws")
        && text.contains("::event/")
        && text.len() <= 400
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":/_-.".contains(c));
    if !looks_right {
        return Err(invalid(
            "the event's eventArn is not an AWS Health event ARN",
        ));
    }
    Text::try_from(text.to_owned())
        .map(Some)
        .map_err(Error::InvalidInput)
}

/// Where the key was found, if the event says, kept short and printable for mails.
fn place(value: &Value) -> Option<Text> {
    value.as_str().and_then(printable_place)
}

/// A place a key was found, kept short and printable for mails.
fn printable_place(text: &str) -> Option<Text> {
    let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    Text::try_from(text.trim().to_owned()).ok()
}

fn invalid(why: &str) -> Error {
    Error::InvalidInput(format!("exposure event: {why}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Shaped after the test event of aws-samples/notify-and-remediate-exposed-access-key.
    fn health_event() -> Value {
        json!({
            "version": "0",
            "detail-type": "AWS Health Event",
            "source": "aws.health",
            "account": "123456789012",
            "time": "2025-02-12T00:38:36Z",
            "region": "us-east-1",
            "resources": ["AKIAIOSFODNN7EXAMPLE"],
            "detail": {
                "eventArn": "arn:aws:health:us-east-1::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED-DVNePcpQ2o",
                "service": "RISK",
                "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
                "eventTypeCategory": "issue",
                "eventScopeCode": "ACCOUNT_SPECIFIC",
                "startTime": "Wed, 12 Feb 2025 00:37:54 GMT",
                "endTime": "Wed, 26 Feb 2025 00:37:54 GMT",
                "statusCode": "open",
                "eventDescription": [{"language": "en_US", "latestDescription": "Your AWS Account may be compromised!"}],
                "eventMetadata": {"publicKey": "AKIAIOSFODNN7EXAMPLE", "userName": "alice", "exposedUrl": "https://github.com/example/repo"},
                "affectedEntities": [{"entityValue": "AKIAIOSFODNN7EXAMPLE", "lastUpdatedTime": "Wed, 12 Feb 2025 00:37:55 GMT"}]
            }
        })
    }

    /// Shaped after aws/Trusted-Advisor-Tools ExposedAccessKeys/stepbystep/mockpayload.json.
    fn trusted_advisor_event() -> Value {
        json!({
            "detail-type": "Trusted Advisor Check Item Refresh Notification",
            "source": "aws.trustedadvisor",
            "time": "2017-06-10T03:16:34Z",
            "region": "us-east-1",
            "detail": {
                "check-name": "Exposed Access Keys",
                "status": "ERROR",
                "check-item-detail": {
                    "Case ID": "02648f3b-e3d2-4b5e-9b0c-4a2b1c0d1e2f",
                    "User Name (IAM or Root)": "alice",
                    "Access Key ID": "AKIAIOSFODNN7EXAMPLE",
                    "Time Updated": "1497064411198",
                    "Fraud Type": "Exposed",
                    "Location": "www.github.com/some_user/some_repo/some_file"
                }
            }
        })
    }

    #[test]
    fn a_health_event_names_the_key_the_time_and_the_place() {
        let exposure = parse_event(&health_event()).expect("parsed");
        assert_eq!(exposure.access_key_id.as_str(), "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(exposure.reporter, Reporter::AwsHealth);
        assert_eq!(
            exposure.reported_at.to_rfc3339(),
            "2025-02-12T00:37:54+00:00"
        );
        assert_eq!(
            exposure.found_at.as_ref().map(Text::as_str),
            Some("https://github.com/example/repo")
        );
        assert_eq!(
            exposure.execution_name(),
            "exposed-AKIAIOSFODNN7EXAMPLE-20250212T003754Z"
        );
        assert!(exposure.execution_name().len() <= 80);
    }

    #[test]
    fn a_trusted_advisor_event_names_the_key_the_time_and_the_place() {
        let exposure = parse_event(&trusted_advisor_event()).expect("parsed");
        assert_eq!(exposure.access_key_id.as_str(), "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(exposure.reporter, Reporter::TrustedAdvisor);
        assert_eq!(exposure.reported_at.timestamp_millis(), 1_497_064_411_198);
        assert_eq!(
            exposure.found_at.as_ref().map(Text::as_str),
            Some("www.github.com/some_user/some_repo/some_file")
        );
    }

    #[test]
    fn the_execution_input_reads_back_as_the_same_exposure() {
        let exposure = parse_event(&health_event()).expect("parsed");
        let input = exposure.execution_input();
        assert_eq!(input["accessKeyId"], "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(input["force"], true);
        let back: Exposure = serde_json::from_value(input["exposure"].clone()).expect("reads");
        assert_eq!(back, exposure);
        let mut forged = input["exposure"].clone();
        forged["foundAt"] = json!("line one\nline two");
        assert!(serde_json::from_value::<Exposure>(forged).is_err());
    }

    #[test]
    fn the_same_report_twice_names_the_same_execution() {
        let a = parse_event(&health_event()).expect("parsed");
        let b = parse_event(&health_event()).expect("parsed");
        assert_eq!(a.execution_name(), b.execution_name());
    }

    #[test]
    fn other_and_malformed_events_are_invalid_input() {
        let mut cases = Vec::new();
        let mut edit = |f: &dyn Fn(&mut Value)| {
            let mut e = health_event();
            f(&mut e);
            cases.push(e);
        };
        edit(&|e| e["source"] = json!("aws.ec2"));
        edit(&|e| e["detail"]["eventTypeCode"] = json!("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"));
        edit(&|e| e["detail"]["affectedEntities"] = json!([]));
        edit(
            &|e| e["detail"]["affectedEntities"] = json!([{"entityValue": "AKIAIOSFODNN7EXAMPLE"}, {"entityValue": "AKIAI44QH8DHBEXAMPLE"}]),
        );
        edit(&|e| {
            e["detail"]["affectedEntities"][0]["entityValue"] = json!("ASIAIOSFODNN7EXAMPLE")
        });
        edit(&|e| {
            e["detail"]["affectedEntities"][0]["entityValue"] = json!("akiaiosfodnn7example")
        });
        edit(&|e| e["detail"]["affectedEntities"][0]["entityValue"] = json!(42));
        edit(&|e| e["detail"]["startTime"] = json!("yesterday"));
        edit(&|e| {
            e["detail"]
                .as_object_mut()
                .map(|d| d.remove("startTime"))
                .map(drop)
                .unwrap_or(())
        });
        let mut ta = trusted_advisor_event();
        ta["detail"]["status"] = json!("OK");
        cases.push(ta);
        let mut ta = trusted_advisor_event();
        ta["detail"]["check-name"] = json!("IAM Access Key Rotation");
        cases.push(ta);
        let mut ta = trusted_advisor_event();
        ta["detail"]["check-item-detail"]["Time Updated"] = json!("soon");
        cases.push(ta);
        cases.push(json!(null));
        cases.push(json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE"}));
        for case in cases {
            let err = parse_event(&case).expect_err("rejected");
            assert!(matches!(err, Error::InvalidInput(_)), "{case}: {err:?}");
        }
    }

    /// Issue 26, M9: what AWS Health records decides, never the event's own text.
    #[test]
    fn a_report_is_confirmed_only_by_aws_healths_own_record() {
        let exposure = parse_event(&health_event()).expect("parsed");
        assert_eq!(
            exposure.health_event(),
            Some("arn:aws:health:us-east-1::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED-DVNePcpQ2o")
        );
        let recorded = |entities: &[&str]| HealthEvent {
            event_type_code: EXPOSED_EVENT_TYPE.into(),
            start_time: Some(Utc.timestamp_opt(1_764_000_000, 0).single().expect("time")),
            exposed_url: Some("https://github.com/aws-says/\u{7}here".into()),
            entities: entities.iter().map(|e| e.to_string()).collect(),
        };
        let confirmed = confirmation(
            &exposure,
            Some(HealthAnswer::Event(recorded(&["AKIAIOSFODNN7EXAMPLE"]))),
        );
        assert_eq!(
            confirmed,
            Confirmation::Confirmed {
                reported_at: Utc.timestamp_opt(1_764_000_000, 0).single().expect("time"),
                found_at: Some(
                    Text::try_from("https://github.com/aws-says/here".to_owned()).expect("text")
                ),
            }
        );
        // The quoted exposure is AWS's: its time and place, not the event's.
        let vetted = exposure.clone().vetted(&confirmed);
        assert_eq!(vetted.reported_at.timestamp(), 1_764_000_000);
        assert_eq!(
            vetted.found_at.as_ref().map(Text::as_str),
            Some("https://github.com/aws-says/here")
        );

        let refuted = |answer| {
            matches!(
                confirmation(&exposure, Some(answer)),
                Confirmation::Refuted(_)
            )
        };
        assert!(refuted(HealthAnswer::Unknown));
        assert!(refuted(HealthAnswer::Event(recorded(&[
            "AKIAI44QH8DHBEXAMPLE"
        ]))));
        assert!(refuted(HealthAnswer::Event(HealthEvent {
            event_type_code: "AWS_EC2_OPERATIONAL_ISSUE".into(),
            ..recorded(&["AKIAIOSFODNN7EXAMPLE"])
        })));
        let unconfirmed = confirmation(&exposure, Some(HealthAnswer::NoAccess("no plan".into())));
        assert_eq!(unconfirmed, Confirmation::Unconfirmed("no plan".into()));
        // Anything short of a confirmation quotes nothing of the report.
        assert_eq!(exposure.clone().vetted(&unconfirmed).found_at, None);

        // Nothing to ask: Trusted Advisor's reports, and a Health report naming no event.
        let ta = parse_event(&trusted_advisor_event()).expect("parsed");
        assert_eq!(ta.health_event(), None);
        assert!(matches!(
            confirmation(&ta, None),
            Confirmation::Unconfirmed(_)
        ));
        let mut e = health_event();
        e["detail"]
            .as_object_mut()
            .expect("detail")
            .remove("eventArn");
        assert_eq!(parse_event(&e).expect("parsed").health_event(), None);
        // An event ARN that is not one is refused, not ignored.
        for arn in [
            json!("arn:aws:iam::123456789012:user/x"),
            json!("arn:aws:health:us-east-1::event/x\ny"),
            json!(42),
        ] {
            let mut e = health_event();
            e["detail"]["eventArn"] = arn.clone();
            let parsed = parse_event(&e);
            assert!(arn.is_number() || parsed.is_err(), "{arn}: {parsed:?}");
        }
    }

    #[test]
    fn the_place_is_kept_printable_and_short() {
        let mut e = health_event();
        e["detail"]["eventMetadata"]["exposedUrl"] =
            json!(format!("https://x/\u{7}{}", "a".repeat(500)));
        let found = parse_event(&e).expect("parsed").found_at.expect("a place");
        assert!(found.as_str().len() <= 300 && !found.as_str().contains('\u{7}'));
        e["detail"]["eventMetadata"] = json!({});
        assert_eq!(parse_event(&e).expect("parsed").found_at, None);
    }
}
