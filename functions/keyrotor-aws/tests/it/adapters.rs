//! The AWS adapters against mocked SDK responses (aws-smithy-mocks): paging, retries,
//! and the error codes the functions branch on. Errors are given as real wire responses so
//! the SDK's own parsing and retry classification run too.

use std::time::Duration;

use aws_sdk_iam::operation::create_access_key::CreateAccessKeyOutput;
use aws_sdk_iam::operation::list_access_keys::ListAccessKeysOutput;
use aws_sdk_iam::operation::list_user_tags::ListUserTagsOutput;
use aws_sdk_iam::operation::list_users::ListUsersOutput;
use aws_sdk_iam::types::{AccessKey as SdkAccessKey, AccessKeyMetadata, StatusType, Tag, User};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::DateTime;
use keyrotor_aws::{Executions, Iam, Secrets};
use keyrotor_core::domain::KeyStatus;
use keyrotor_core::error::AwsErrorKind;
use keyrotor_core::ports::StartOutcome;
use keyrotor_core::ports::{EventsPort, ExecutionsPort, SecretsPort, UsersPort};
use keyrotor_core::{Error, ErrorType};

fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(5))
}

/// An IAM (query protocol) error response.
fn iam_error(status: u16, code: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{code} happened</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    );
    HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    )
}

/// A JSON-protocol (Secrets Manager, Step Functions) error response.
fn json_error(status: u16, code: &str) -> HttpResponse {
    let body = format!(r#"{{"__type":"{code}","message":"{code} happened"}}"#);
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    );
    response
        .headers_mut()
        .insert("x-amzn-errortype", code.to_owned());
    response
}

fn user(name: &str) -> User {
    User::builder()
        .user_name(name)
        .path("/")
        .user_id(format!("ID{name}"))
        .arn(format!("arn:aws:iam::123456789012:user/{name}"))
        .create_date(DateTime::from_secs(1_700_000_000))
        .build()
        .expect("valid user")
}

fn key_meta(id: &str, status: StatusType) -> AccessKeyMetadata {
    AccessKeyMetadata::builder()
        .access_key_id(id)
        .status(status)
        .user_name("alice")
        .create_date(DateTime::from_secs(1_700_000_000))
        .build()
}

#[tokio::test]
async fn list_users_pages_through_every_marker() {
    let pages = mock!(aws_sdk_iam::Client::list_users)
        .sequence()
        .output(|| {
            ListUsersOutput::builder()
                .users(user("a"))
                .users(user("b"))
                .is_truncated(true)
                .marker("m1")
                .build()
                .expect("page")
        })
        .output(|| {
            ListUsersOutput::builder()
                .users(user("c"))
                .is_truncated(true)
                .marker("m2")
                .build()
                .expect("page")
        })
        .output(|| {
            ListUsersOutput::builder()
                .users(user("d"))
                .is_truncated(false)
                .build()
                .expect("page")
        })
        .build();
    let iam = Iam::new(mock_client!(aws_sdk_iam, [&pages]));
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = iam
            .list_users_page(marker.as_deref(), 2)
            .await
            .expect("page");
        seen.extend(page.users);
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d"]);
    assert_eq!(pages.num_calls(), 3);
}

#[tokio::test]
async fn access_keys_and_tags_are_read_across_pages() {
    let keys = mock!(aws_sdk_iam::Client::list_access_keys)
        .sequence()
        .output(|| {
            ListAccessKeysOutput::builder()
                .access_key_metadata(key_meta("AKIAFIRST00000000001", StatusType::Active))
                .is_truncated(true)
                .marker("k")
                .build()
                .expect("page")
        })
        .output(|| {
            ListAccessKeysOutput::builder()
                .access_key_metadata(key_meta("AKIASECOND0000000002", StatusType::Inactive))
                .is_truncated(false)
                .build()
                .expect("page")
        })
        .build();
    // IAM allows 50 tags per user; moto allows more. 51 across two pages all arrive.
    let tags = mock!(aws_sdk_iam::Client::list_user_tags)
        .sequence()
        .output(|| {
            let mut out = ListUserTagsOutput::builder().is_truncated(true).marker("t");
            for i in 0..50 {
                out = out.tags(
                    Tag::builder()
                        .key(format!("k{i}"))
                        .value("v")
                        .build()
                        .expect("tag"),
                );
            }
            out.build().expect("page")
        })
        .output(|| {
            ListUserTagsOutput::builder()
                .tags(
                    Tag::builder()
                        .key("Email")
                        .value("a@example.com")
                        .build()
                        .expect("tag"),
                )
                .build()
                .expect("page")
        })
        .build();
    let iam = Iam::new(mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [&keys, &tags]
    ));
    let got = iam.access_keys("alice").await.expect("keys");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].status, KeyStatus::Inactive);
    let got = iam.user_tags("alice").await.expect("tags");
    assert_eq!(got.len(), 51);
    assert_eq!(got.get("Email").map(String::as_str), Some("a@example.com"));
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    let rule = mock!(aws_sdk_iam::Client::list_access_keys)
        .sequence()
        .http_response(|| iam_error(400, "Throttling"))
        .times(2)
        .output(|| {
            ListAccessKeysOutput::builder()
                .set_access_key_metadata(Some(vec![]))
                .is_truncated(false)
                .build()
                .expect("page")
        })
        .build();
    let iam = Iam::new(mock_client!(
        aws_sdk_iam,
        RuleMode::Sequential,
        [&rule],
        |c| c.retry_config(retries())
    ));
    assert!(iam.access_keys("alice").await.expect("recovers").is_empty());
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn persistent_throttling_surfaces_as_throttled() {
    let rule = mock!(aws_sdk_iam::Client::list_access_keys)
        .sequence()
        .http_response(|| iam_error(400, "Throttling"))
        .repeatedly()
        .build();
    let iam = Iam::new(mock_client!(
        aws_sdk_iam,
        RuleMode::Sequential,
        [&rule],
        |c| c.retry_config(retries())
    ));
    let err = iam.access_keys("alice").await.expect_err("throttled");
    assert_eq!(err.error_type(), ErrorType::Throttled);
}

#[tokio::test]
async fn missing_users_are_reported_as_not_found() {
    let rule = mock!(aws_sdk_iam::Client::list_access_keys)
        .then_http_response(|| iam_error(404, "NoSuchEntity"));
    let iam = Iam::new(mock_client!(aws_sdk_iam, [&rule]));
    let err = iam.access_keys("ghost").await.expect_err("missing");
    assert!(
        matches!(err, Error::UserNotFound(ref u) if u == "ghost"),
        "{err:?}"
    );
    assert_eq!(err.error_type(), ErrorType::NotFound);
}

#[tokio::test]
async fn limit_exceeded_on_create_is_a_conflict() {
    let rule = mock!(aws_sdk_iam::Client::create_access_key)
        .then_http_response(|| iam_error(409, "LimitExceeded"));
    let iam = Iam::new(mock_client!(aws_sdk_iam, [&rule]));
    let err = iam.create_access_key("alice").await.expect_err("limit");
    assert_eq!(err.aws_kind(), Some(AwsErrorKind::LimitExceeded));
    assert_eq!(err.error_type(), ErrorType::Conflict);
}

#[tokio::test]
async fn create_access_key_is_never_retried_by_the_sdk() {
    // A 500 may mean the key was created; retrying would create a second one.
    let rule = mock!(aws_sdk_iam::Client::create_access_key)
        .sequence()
        .http_response(|| iam_error(500, "ServiceFailure"))
        .output(|| {
            CreateAccessKeyOutput::builder()
                .access_key(
                    SdkAccessKey::builder()
                        .user_name("alice")
                        .access_key_id("AKIANEW0000000000001")
                        .status(StatusType::Active)
                        .secret_access_key("never-seen")
                        .build()
                        .expect("key"),
                )
                .build()
        })
        .build();
    let iam = Iam::new(mock_client!(
        aws_sdk_iam,
        RuleMode::Sequential,
        [&rule],
        |c| c.retry_config(retries())
    ));
    let err = iam.create_access_key("alice").await.expect_err("500");
    assert_eq!(err.error_type(), ErrorType::Transient);
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn deleting_a_key_that_is_gone_is_not_an_error() {
    let rule = mock!(aws_sdk_iam::Client::delete_access_key)
        .then_http_response(|| iam_error(404, "NoSuchEntity"));
    let iam = Iam::new(mock_client!(aws_sdk_iam, [&rule]));
    assert!(!iam
        .delete_access_key("alice", "AKIAGONE000000000001")
        .await
        .expect("idempotent"));
}

/// Starts `scheduled-20261125-alice-1234abcd` with `ours` where that name was taken by an
/// execution started with `theirs`.
async fn start_over(theirs: &'static str, ours: &str) -> StartOutcome {
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    let taken = mock!(aws_sdk_sfn::Client::start_execution)
        .then_http_response(|| json_error(400, "ExecutionAlreadyExists"));
    let existing = mock!(aws_sdk_sfn::Client::describe_execution)
        .match_requests(|r| {
            r.execution_arn()
                == Some("arn:aws:states:us-east-1:123456789012:execution:k:scheduled-20261125-alice-1234abcd")
        })
        .then_output(move || {
            DescribeExecutionOutput::builder()
                .execution_arn("arn:aws:states:us-east-1:123456789012:execution:k:scheduled-20261125-alice-1234abcd")
                .state_machine_arn("arn:aws:states:us-east-1:123456789012:stateMachine:k")
                .status(aws_sdk_sfn::types::ExecutionStatus::Succeeded)
                .start_date(DateTime::from_secs(0))
                .input(theirs)
                .build()
                .expect("output")
        });
    let sfn = Executions::new(mock_client!(aws_sdk_sfn, [&taken, &existing]));
    sfn.start(
        "arn:aws:states:us-east-1:123456789012:stateMachine:k",
        "scheduled-20261125-alice-1234abcd",
        ours.into(),
    )
    .await
    .expect("a taken name is an outcome")
}

#[tokio::test]
async fn a_started_execution_name_counts_as_already_started_only_with_the_same_input() {
    let ours = r#"{"user":"alice","dryRun":false}"#;
    assert_eq!(
        start_over(r#"{ "dryRun": false, "user": "alice" }"#, ours).await,
        StartOutcome::AlreadyStarted,
        "the same input, spelled otherwise"
    );
    // Someone took the name first: a dry run, another user, or one field more.
    for theirs in [
        r#"{"user":"alice","dryRun":true}"#,
        r#"{"user":"bob","dryRun":false}"#,
        r#"{"user":"alice","dryRun":false,"force":true}"#,
        "not json",
    ] {
        assert!(
            matches!(
                start_over(theirs, ours).await,
                StartOutcome::Conflicting { ref execution_arn } if execution_arn.ends_with(":k:scheduled-20261125-alice-1234abcd")
            ),
            "{theirs}"
        );
    }
}

#[tokio::test]
async fn secret_description_names_the_current_key_without_reading_the_value() {
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    let rule = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(|| {
        DescribeSecretOutput::builder()
            .arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-access-key/alice-AbCdEf")
            .name("iam-access-key/alice")
            .version_ids_to_stages(
                "keyrotor-v1-AKIAOLD0000000000001",
                vec!["AWSPREVIOUS".into()],
            )
            .version_ids_to_stages(
                "keyrotor-v1-AKIANEW0000000000002",
                vec!["AWSCURRENT".into()],
            )
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("keyrotor:deactivated-key")
                    .value("AKIAOLD0000000000001")
                    .build(),
            )
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("keyrotor:deactivated-at")
                    .value("2026-11-20T10:00:00Z")
                    .build(),
            )
            .build()
    });
    let secrets = Secrets::new(mock_client!(aws_sdk_secretsmanager, [&rule]), None);
    let d = secrets
        .describe("iam-access-key/alice")
        .await
        .expect("ok")
        .expect("exists");
    assert_eq!(
        d.state.current_key_id.as_deref(),
        Some("AKIANEW0000000000002")
    );
    let deactivated = d.state.deactivated.expect("recorded");
    assert_eq!(deactivated.key_id, "AKIAOLD0000000000001");
    assert_eq!(deactivated.at.to_rfc3339(), "2026-11-20T10:00:00+00:00");
}

#[tokio::test]
async fn a_missing_secret_is_none_and_a_deleted_one_says_so() {
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    let missing = mock!(aws_sdk_secretsmanager::Client::describe_secret)
        .match_requests(|r| r.secret_id() == Some("missing"))
        .then_http_response(|| json_error(400, "ResourceNotFoundException"));
    let deleted = mock!(aws_sdk_secretsmanager::Client::describe_secret)
        .match_requests(|r| r.secret_id() == Some("deleted"))
        .then_output(|| {
            DescribeSecretOutput::builder()
                .arn("arn:x")
                .name("deleted")
                .deleted_date(DateTime::from_secs(1))
                .build()
        });
    let secrets = Secrets::new(
        mock_client!(
            aws_sdk_secretsmanager,
            RuleMode::MatchAny,
            [&missing, &deleted]
        ),
        None,
    );
    assert!(secrets.describe("missing").await.expect("ok").is_none());
    let deleted = secrets
        .describe("deleted")
        .await
        .expect("described")
        .expect("exists");
    assert!(deleted.scheduled_for_deletion);
}

#[tokio::test]
async fn secret_description_tells_key_replication_rotation_and_versions() {
    use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
    use aws_sdk_secretsmanager::types::ReplicationStatusType;
    let rule = mock!(aws_sdk_secretsmanager::Client::describe_secret).then_output(|| {
        DescribeSecretOutput::builder()
            .arn("arn:x")
            .name("squatted")
            .kms_key_id("arn:aws:kms:us-east-1:999999999999:key/theirs")
            .replication_status(ReplicationStatusType::builder().region("eu-west-1").build())
            .rotation_enabled(true)
            .version_ids_to_stages("v1", vec!["AWSCURRENT".into()])
            .build()
    });
    let secrets = Secrets::new(mock_client!(aws_sdk_secretsmanager, [&rule]), None);
    let d = secrets
        .describe("squatted")
        .await
        .expect("ok")
        .expect("exists");
    assert_eq!(
        d.kms_key_id.as_deref(),
        Some("arn:aws:kms:us-east-1:999999999999:key/theirs")
    );
    assert!(d.replicated && d.rotation_enabled && !d.scheduled_for_deletion);
    assert_eq!(d.version_count, 1);
    assert_eq!(d.state.current_key_id, None, "not a version keyrotor wrote");
}

#[tokio::test]
async fn get_user_gives_the_name_as_iam_spells_it_and_the_unique_id() {
    use aws_sdk_iam::operation::get_user::GetUserOutput;
    use aws_sdk_iam::types::User;
    let rule = mock!(aws_sdk_iam::Client::get_user)
        .match_requests(|r| r.user_name() == Some("ALICE"))
        .then_output(|| {
            GetUserOutput::builder()
                .user(
                    User::builder()
                        .user_name("alice")
                        .user_id("AIDAEXAMPLEALICE00001")
                        .arn("arn:aws:iam::123456789012:user/team/alice")
                        .path("/team/")
                        .create_date(DateTime::from_secs(0))
                        .build()
                        .expect("user"),
                )
                .build()
        });
    let iam = Iam::new(mock_client!(aws_sdk_iam, [&rule]));
    let user = iam.user("ALICE").await.expect("found");
    assert_eq!(user.name, "alice");
    assert_eq!(user.id, "AIDAEXAMPLEALICE00001");
    assert_eq!(user.arn, "arn:aws:iam::123456789012:user/team/alice");
}

const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\nalice,arn:aws:iam::123456789012:user/alice,2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n";

fn report_output(
    generated: DateTime,
) -> aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput {
    aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput::builder()
        .content(aws_smithy_types::Blob::new(REPORT))
        .generated_time(generated)
        .build()
}

/// GenerateCredentialReport accepted (the report's state does not matter to the caller).
fn generate_report_ok() -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_iam::Client::generate_credential_report).then_output(|| {
        aws_sdk_iam::operation::generate_credential_report::GenerateCredentialReportOutput::builder(
        )
        .build()
    })
}

#[tokio::test]
async fn a_recent_credential_report_is_reused_without_generating_one() {
    let now = DateTime::from_secs(chrono::Utc::now().timestamp() - 3600);
    let get =
        mock!(aws_sdk_iam::Client::get_credential_report).then_output(move || report_output(now));
    let generate = generate_report_ok();
    let iam = Iam::new(mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [&get, &generate]
    ));
    let report = iam
        .credential_report(chrono::Duration::hours(4))
        .await
        .expect("report");
    assert_eq!(report.users.len(), 1);
    assert_eq!((get.num_calls(), generate.num_calls()), (1, 0));

    // The scan's next page: the report this instance read is still young enough.
    let again = iam
        .credential_report(chrono::Duration::hours(4))
        .await
        .expect("report");
    assert_eq!(again, report);
    assert_eq!((get.num_calls(), generate.num_calls()), (1, 0));

    // Asked for one under 30 minutes old, the hour-old report is neither reused from
    // memory nor from IAM: a new one is generated (the mock keeps answering the same).
    iam.credential_report(chrono::Duration::minutes(30))
        .await
        .expect("report");
    assert_eq!((get.num_calls(), generate.num_calls()), (3, 1));
}

#[tokio::test]
async fn a_missing_credential_report_is_generated_and_awaited() {
    let now = DateTime::from_secs(chrono::Utc::now().timestamp());
    let get = mock!(aws_sdk_iam::Client::get_credential_report)
        .sequence()
        .http_response(|| iam_error(410, "ReportNotPresent"))
        .http_response(|| iam_error(404, "ReportInProgress"))
        .output(move || report_output(now))
        .build();
    let generate = generate_report_ok();
    let iam = Iam::new(mock_client!(
        aws_sdk_iam,
        RuleMode::MatchAny,
        [&get, &generate]
    ));
    let report = iam
        .credential_report(chrono::Duration::hours(4))
        .await
        .expect("report");
    assert!(report.users.contains_key("alice"));
    assert_eq!((get.num_calls(), generate.num_calls()), (3, 1));
}

fn event(n: usize) -> keyrotor_core::events::Event {
    let context = keyrotor_core::events::Context {
        user: Some(format!("user-{n}")),
        execution: None,
        forced: false,
        account: None,
    };
    keyrotor_core::events::deleted(&context, "AKIAIOSFODNN7EXAMPLE")
}

#[tokio::test]
async fn events_go_out_ten_at_a_time_as_keyrotors_source() {
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    let put = mock!(aws_sdk_eventbridge::Client::put_events)
        .match_requests(|r| {
            r.entries().len() <= 10
                && r.entries().iter().all(|e| {
                    e.source() == Some("keyrotor")
                        && e.detail_type() == Some("OldKeyDeleted")
                        && e.event_bus_name().is_none()
                })
        })
        .sequence()
        .output(|| PutEventsOutput::builder().failed_entry_count(0).build())
        .times(3)
        .build();
    let bus = keyrotor_aws::EventBus::new(mock_client!(aws_sdk_eventbridge, [&put]));
    let events: Vec<_> = (0..23).map(event).collect();
    bus.publish(&events).await.expect("published");
    assert_eq!(put.num_calls(), 3, "23 events: 10, 10 and 3");
}

#[tokio::test]
async fn an_event_eventbridge_refuses_fails_the_publication() {
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_sdk_eventbridge::types::PutEventsResultEntry;
    let put = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(PutEventsResultEntry::builder().event_id("e1").build())
            .entries(
                PutEventsResultEntry::builder()
                    .error_code("InternalFailure")
                    .build(),
            )
            .build()
    });
    let bus = keyrotor_aws::EventBus::new(mock_client!(aws_sdk_eventbridge, [&put]));
    let err = bus
        .publish(&[event(1), event(2)])
        .await
        .expect_err("one refused");
    assert_eq!(err.error_type(), ErrorType::Transient);
    assert!(err.to_string().contains("InternalFailure"), "{err}");
}
