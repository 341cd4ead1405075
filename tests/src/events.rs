//! Events, both ways. AWS's reports of an exposed access key, as EventBridge delivers them
//! to `respond-to-exposure`: shaped after the AWS Health `AWS_RISK_CREDENTIALS_EXPOSED`
//! event and the Trusted Advisor "Exposed Access Keys" check event of AWS's documentation
//! and samples, for any key and time. And keyrotor's own events as a rule delivered them
//! ([`of_type`]).

use chrono::{DateTime, Utc};
use keyrotor_localstack::account::TestUser;
use keyrotor_localstack::stack::EXEMPT_GROUP;
use serde_json::{json, Value};

/// The users a leak can hit where a scheduled run would rotate nothing, each with an owner
/// address; the first key of each is the one AWS reports exposed: an exempt user (by tag and
/// group), a user on a warning day, and a user with an inactive leftover key.
pub fn users_a_leak_can_hit() -> Vec<TestUser> {
    [
        TestUser::new("leak-exempt")
            .tag("key-rotation:exempt", "true")
            .group(EXEMPT_GROUP)
            .key(20, true),
        TestUser::new("leak-warned").key(80, true),
        TestUser::new("leak-leftover").key(30, true).key(200, false),
    ]
    .into_iter()
    .map(|user| {
        let address = format!("{}@example.com", user.name);
        user.tag("Email", &address)
    })
    .collect()
}

/// The ARN of the AWS Health event [`health_exposure`] reports `key` with.
pub fn health_event_arn(key: &str) -> String {
    format!("arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_{key}")
}

/// An AWS Health event reporting `key` exposed at `at`, found at `url` (its ARN
/// [`health_event_arn`]). Its shape proves nothing: whether AWS Health knows it is up to
/// the account (or the local stack's fake Health API) a test runs against.
pub fn health_exposure(key: &str, at: DateTime<Utc>, url: &str) -> Value {
    let rfc1123 = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": "123456789012",
        "time": at.to_rfc3339(),
        "region": "us-east-1",
        "resources": [key],
        "detail": {
            "eventArn": health_event_arn(key),
            "service": "RISK",
            "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
            "eventTypeCategory": "issue",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "startTime": rfc1123,
            "statusCode": "open",
            "eventDescription": [{"language": "en_US", "latestDescription": "Your AWS Access Key may be compromised."}],
            "eventMetadata": {"exposedUrl": url},
            "affectedEntities": [{"entityValue": key, "lastUpdatedTime": rfc1123}]
        }
    })
}

/// A Trusted Advisor "Exposed Access Keys" check item reporting `key` at `at`.
pub fn trusted_advisor_exposure(key: &str, user: &str, at: DateTime<Utc>) -> Value {
    json!({
        "version": "0",
        "detail-type": "Trusted Advisor Check Item Refresh Notification",
        "source": "aws.trustedadvisor",
        "account": "123456789012",
        "time": at.to_rfc3339(),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "check-name": "Exposed Access Keys",
            "check-item-detail": {
                "Case ID": "02648f3b-e3d2-4b5e-9b0c-4a2b1c0d1e2f",
                "User Name (IAM or Root)": user,
                "Access Key ID": key,
                "Time Updated": at.timestamp_millis().to_string(),
                "Fraud Type": "Exposed",
                "Location": "www.github.com/example/repo/blob/main/config"
            },
            "status": "ERROR",
            "resource_id": "",
            "uuid": "aa12345f-55c7-498e-b7ac-123456781234"
        }
    })
}

/// The delivered keyrotor events (`Account::received_events`) of `detail_type`.
pub fn of_type<'a>(events: &'a [Value], detail_type: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["detail-type"] == detail_type && e["source"] == keyrotor_core::events::SOURCE)
        .collect()
}
