//! Each function's handler, run in-process against moto server, with the account read back
//! through the SDK afterwards. One moto server per test binary; tests take turns on it and
//! each starts from a reset account.

use std::sync::OnceLock;
use std::time::Duration;

use keyrotor_aws::FromConfig;
use keyrotor_core::config::vars;
use keyrotor_core::{Config, ErrorType};
use keyrotor_localstack::account::{aged_key, user_with_aged_key, Account};
use keyrotor_localstack::moto::MotoServer;
use keyrotor_localstack::proxy::FaultProxy;
use keyrotor_localstack::stack;
use serde_json::{json, Value};
use tokio::sync::{Mutex, MutexGuard};

/// A handler's result as JSON, or its error's stable type and message.
type Outcome = Result<Value, (ErrorType, String)>;

const FROM: &str = "keyrotor@example.com";
const ADMIN: &str = "security@example.com";
const ARN_PREFIX: &str = "arn:aws:iam::123456789012:user/";

static MOTO: OnceLock<MotoServer> = OnceLock::new();
static TURN: Mutex<()> = Mutex::const_new(());

struct Ctx {
    _turn: MutexGuard<'static, ()>,
    moto: &'static MotoServer,
    account: Account,
    env: Env,
}

/// What the functions are configured with, and the AWS they reach: each call builds the
/// called function's own dependencies from it, as its cold start would.
struct Env {
    config: Config,
    sdk: aws_config::SdkConfig,
}

impl Env {
    fn deps<D: FromConfig>(&self) -> D {
        D::from_config(self.config.clone(), &self.sdk).expect("the function's settings")
    }
}

impl Ctx {
    /// The environment of a function configured with `extra` on top of the test defaults.
    fn env_with(&self, extra: &[(&'static str, &str)]) -> Env {
        env_with(self.moto, extra)
    }
}

fn env_with(moto: &MotoServer, extra: &[(&'static str, &str)]) -> Env {
    env_at(&moto.sdk_config(), extra)
}

fn env_at(sdk: &aws_config::SdkConfig, extra: &[(&'static str, &str)]) -> Env {
    let config = Config::from_lookup(|name| {
        extra
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| match name {
                vars::FROM_ADDRESS => Some(FROM.into()),
                vars::ADMIN_ADDRESS => Some(ADMIN.into()),
                vars::DELETION_DELAY_SECONDS => Some("1".into()),
                // The handlers one step at a time: no overlap window (tests/tests/it/window.rs
                // has the window's).
                vars::OVERLAP_SECONDS => Some("0".into()),
                // Seeded keys were never used: rotated, not retired.
                vars::UNUSED_DAYS => Some("0".into()),
                vars::KMS_KEY_ID => Some(stack::KMS_KEY_ID.into()),
                vars::TRUSTED_ROLE_ARNS => Some(stack::TRUSTED_ROLE_ARNS.into()),
                // moto accepts a new key at once; a failing STS is given up on quickly.
                vars::VERIFY_TIMEOUT_SECONDS => Some("1".into()),
                _ => None,
            })
    })
    .expect("test configuration is valid");
    Env {
        config,
        sdk: sdk.clone(),
    }
}

async fn setup() -> Ctx {
    let turn = TURN.lock().await;
    let moto = MOTO.get_or_init(|| MotoServer::start().expect("moto server starts"));
    moto.reset().expect("reset");
    moto.set_clock_offset(0).expect("clock");
    let account = Account::new(&moto.sdk_config());
    account.verify_sender(FROM).await.expect("verify sender");
    let env = env_with(moto, &[]);
    Ctx {
        _turn: turn,
        moto,
        account,
        env,
    }
}

/// The name of `user`'s secret: the prefix and the user's unique ID.
async fn secret_name(ctx: &Ctx, user: &str) -> String {
    ctx.account.secret_of(user).await.expect("the user exists")
}

/// Runs a handler and returns its output as JSON, or the error's stable type and message.
macro_rules! call {
    ($handler:path, $env:expr, $event:expr) => {
        $handler($event, &$env.deps())
            .await
            .map(|out| serde_json::to_value(out).expect("serializable"))
            .map_err(|e| (e.error_type(), e.to_string()))
    };
}

async fn rotate(ctx: &Ctx, user: &str, old: &str) -> Value {
    call!(
        create_key::handle,
        &ctx.env,
        json!({"user": user, "oldKeyId": old})
    )
    .expect("create-key succeeds")
}

#[tokio::test]
async fn a_91_day_old_key_is_rotated_stored_deactivated_and_deleted() {
    let ctx = setup().await;
    let old = user_with_aged_key(
        ctx.moto,
        &ctx.account,
        "alice",
        &[("Email", "alice@example.com")],
        91,
    )
    .await
    .expect("seed");

    let plan = call!(assess_key_age::handle, &ctx.env, json!({"user": "alice"})).expect("assess");
    assert_eq!(plan["action"], "rotate");
    assert_eq!(plan["oldKeyId"], old.id.as_str());
    assert_eq!(plan["ageDays"], 91);

    let created = rotate(&ctx, "alice", &old.id).await;
    let new_id = created["newKeyId"].as_str().expect("new key id").to_owned();
    assert_eq!(created["secretName"], secret_name(&ctx, "alice").await);
    let keys = ctx.account.keys("alice").await.expect("keys");
    assert_eq!(
        keys,
        [
            (old.id.clone(), "Active".into()),
            (new_id.clone(), "Active".into())
        ]
    );

    let stored = ctx
        .account
        .secret_value(&secret_name(&ctx, "alice").await)
        .await
        .expect("secret");
    assert_eq!(stored["AccessKeyId"], new_id.as_str());
    assert_eq!(stored["UserName"], "alice");
    assert!(stored["RotatedAt"].is_string());
    let new_secret = stored["SecretAccessKey"].as_str().expect("secret value");
    assert_eq!(
        ctx.account
            .caller_arn(&new_id, new_secret)
            .await
            .expect("sts"),
        format!("{ARN_PREFIX}alice")
    );
    let versions = ctx
        .account
        .secret_versions(&secret_name(&ctx, "alice").await)
        .await
        .expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].1, ["AWSCURRENT"]);
    assert!(
        !created.to_string().contains(new_secret),
        "no secret in the output"
    );

    let pair = json!({"user": "alice", "oldKeyId": old.id, "newKeyId": new_id});
    let deactivated = call!(deactivate_key::handle, &ctx.env, pair.clone()).expect("deactivate");
    assert_eq!(deactivated["alreadyInactive"], false);
    assert!(deactivated["deactivatedAt"].is_string());
    let keys = ctx.account.keys("alice").await.expect("keys");
    assert_eq!(
        keys,
        [
            (old.id.clone(), "Inactive".into()),
            (new_id.clone(), "Active".into())
        ]
    );

    // Too early: with a delay of a minute, the deletion time has not come.
    let minute = ctx.env_with(&[(vars::DELETION_DELAY_SECONDS, "60")]);
    let early = call!(delete_key::handle, &minute, pair.clone()).expect_err("too early");
    assert_eq!(early.0, ErrorType::Blocked, "{}", early.1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let deleted = call!(delete_key::handle, &ctx.env, pair.clone()).expect("delete");
    assert_eq!(deleted["outcome"], "deleted");
    assert_eq!(
        ctx.account.keys("alice").await.expect("keys"),
        [(new_id.clone(), "Active".into())]
    );
}

#[tokio::test]
async fn a_leftover_inactive_key_is_removed_before_the_new_key_is_created() {
    let ctx = setup().await;
    let leftover = user_with_aged_key(ctx.moto, &ctx.account, "bob", &[], 200)
        .await
        .expect("seed");
    ctx.account
        .set_key_status("bob", &leftover.id, false)
        .await
        .expect("deactivate");
    let old = aged_key(ctx.moto, &ctx.account, "bob", 95)
        .await
        .expect("seed");

    let plan = call!(assess_key_age::handle, &ctx.env, json!({"user": "bob"})).expect("assess");
    assert_eq!(plan["deleteFirst"], leftover.id.as_str());
    let created = rotate(&ctx, "bob", &old.id).await;
    assert_eq!(created["deletedLeftoverKeyId"], leftover.id.as_str());
    let keys = ctx.account.keys("bob").await.expect("keys");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], (old.id.clone(), "Active".into()));
    assert_eq!(keys[1].0, created["newKeyId"].as_str().expect("id"));
}

#[tokio::test]
async fn two_active_keys_are_blocked_and_nothing_changes() {
    let ctx = setup().await;
    let oldest = user_with_aged_key(ctx.moto, &ctx.account, "carol", &[], 120)
        .await
        .expect("seed");
    aged_key(ctx.moto, &ctx.account, "carol", 30)
        .await
        .expect("seed");
    let before = ctx.account.snapshot().await.expect("snapshot");

    let plan = call!(assess_key_age::handle, &ctx.env, json!({"user": "carol"})).expect("assess");
    assert_eq!(plan["action"], "blocked");
    assert!(plan["reason"]
        .as_str()
        .is_some_and(|r| r.contains("two active")));
    let err = call!(
        create_key::handle,
        &ctx.env,
        json!({"user": "carol", "oldKeyId": oldest.id})
    )
    .expect_err("blocked");
    assert_eq!(err.0, ErrorType::Blocked, "{}", err.1);
    let forced = call!(
        create_key::handle,
        &ctx.env,
        json!({"user": "carol", "oldKeyId": oldest.id, "force": true})
    )
    .expect_err("force never overrides the key count");
    assert_eq!(forced.0, ErrorType::Blocked);
    assert_eq!(ctx.account.snapshot().await.expect("snapshot"), before);
}

#[tokio::test]
async fn every_step_repeated_after_success_changes_nothing_more() {
    let ctx = setup().await;
    let old = user_with_aged_key(ctx.moto, &ctx.account, "dave", &[], 100)
        .await
        .expect("seed");
    let first = rotate(&ctx, "dave", &old.id).await;
    let again = rotate(&ctx, "dave", &old.id).await;
    assert_eq!(again["newKeyId"], first["newKeyId"]);
    assert_eq!(again["resumed"], true);
    assert_eq!(ctx.account.keys("dave").await.expect("keys").len(), 2);
    assert_eq!(
        ctx.account
            .secret_versions(&secret_name(&ctx, "dave").await)
            .await
            .expect("versions")
            .len(),
        1
    );

    let pair = json!({"user": "dave", "oldKeyId": old.id, "newKeyId": first["newKeyId"]});
    let d1 = call!(deactivate_key::handle, &ctx.env, pair.clone()).expect("deactivate");
    let d2 = call!(deactivate_key::handle, &ctx.env, pair.clone()).expect("deactivate again");
    assert_eq!(d2["alreadyInactive"], true);
    assert_eq!(
        d2["deactivatedAt"], d1["deactivatedAt"],
        "the recorded time is kept"
    );
    // create-key after the deactivation still recognises the finished rotation.
    assert_eq!(rotate(&ctx, "dave", &old.id).await["resumed"], true);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        call!(delete_key::handle, &ctx.env, pair.clone()).expect("delete")["outcome"],
        "deleted"
    );
    assert_eq!(
        call!(delete_key::handle, &ctx.env, pair.clone()).expect("again")["outcome"],
        "alreadyDeleted"
    );
    assert_eq!(ctx.account.keys("dave").await.expect("keys").len(), 1);
    assert_eq!(
        ctx.account
            .secret_versions(&secret_name(&ctx, "dave").await)
            .await
            .expect("versions")
            .len(),
        1
    );
}

#[tokio::test]
async fn a_reactivated_old_key_is_kept_and_reported() {
    let ctx = setup().await;
    let old = user_with_aged_key(ctx.moto, &ctx.account, "erin", &[], 95)
        .await
        .expect("seed");
    let created = rotate(&ctx, "erin", &old.id).await;
    let pair = json!({"user": "erin", "oldKeyId": old.id, "newKeyId": created["newKeyId"]});
    call!(deactivate_key::handle, &ctx.env, pair.clone()).expect("deactivate");
    ctx.account
        .set_key_status("erin", &old.id, true)
        .await
        .expect("rollback");
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let out = call!(delete_key::handle, &ctx.env, pair).expect("delete-key answers");
    assert_eq!(out["outcome"], "keptReactivated");
    assert!(out["reason"]
        .as_str()
        .is_some_and(|r| r.contains("reactivated")));
    assert!(ctx
        .account
        .keys("erin")
        .await
        .expect("keys")
        .contains(&(old.id.clone(), "Active".into())));
    // And the scan does not fight the rollback: with the new key under a day old that
    // pair would be resumed, so age it: a day later the pair is reported, not undone.
    let plan = call!(assess_key_age::handle, &ctx.env, json!({"user": "erin"})).expect("assess");
    assert!(
        plan["action"] == "rotate" || plan["action"] == "blocked",
        "{plan}"
    );
}

#[tokio::test]
async fn exemptions_follow_the_tag_its_date_and_the_group() {
    let ctx = setup().await;
    let tag = "key-rotation:exempt";
    let in_200_days = (chrono::Utc::now() + chrono::Duration::days(200))
        .date_naive()
        .to_string();
    let cases = [
        ("ex-true", vec![(tag, "true")], true),
        ("ex-future", vec![(tag, in_200_days.as_str())], true),
        // A user who may tag themselves cannot exempt themselves forever.
        ("ex-forever", vec![(tag, "9999-12-31")], false),
        ("ex-past", vec![(tag, "2020-01-01")], false),
        ("ex-group", vec![], true),
        ("plain", vec![], false),
    ];
    let mut keys = Vec::new();
    for (user, tags, _) in &cases {
        keys.push(
            user_with_aged_key(ctx.moto, &ctx.account, user, tags, 120)
                .await
                .expect("seed"),
        );
    }
    ctx.account
        .add_to_group("break-glass", "ex-group")
        .await
        .expect("group");
    let env = ctx.env_with(&[(vars::EXEMPT_GROUP, "break-glass")]);

    for ((user, _, exempt), key) in cases.iter().zip(&keys) {
        let plan = call!(assess_key_age::handle, &env, json!({"user": user})).expect("assess");
        let expected = if *exempt { "exempt" } else { "rotate" };
        assert_eq!(plan["action"], expected, "{user}: {plan}");
        let result = call!(
            create_key::handle,
            &env,
            json!({"user": user, "oldKeyId": key.id})
        );
        let count = ctx.account.keys(user).await.expect("keys").len();
        if *exempt {
            assert_eq!(result.expect_err("exempt").0, ErrorType::Blocked, "{user}");
            assert_eq!(count, 1, "{user} untouched");
            assert!(
                !ctx.account
                    .secret_exists(&secret_name(&ctx, user).await)
                    .await,
                "{user} has no secret"
            );
        } else {
            assert!(result.is_ok(), "{user}: {result:?}");
            assert_eq!(count, 2, "{user} rotated");
        }
    }
    let batch_users: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let batch = call!(assess_key_age::handle, &env, json!({"users": batch_users})).expect("batch");
    assert_eq!(batch["counts"]["exempt"], 3, "{batch}");
}

#[tokio::test]
async fn emails_name_the_key_and_secret_but_never_the_secret_value() {
    let ctx = setup().await;
    let old = user_with_aged_key(
        ctx.moto,
        &ctx.account,
        "frank",
        &[("Email", "frank@example.com")],
        91,
    )
    .await
    .expect("seed");
    user_with_aged_key(ctx.moto, &ctx.account, "nomail", &[], 80)
        .await
        .expect("seed");
    let created = rotate(&ctx, "frank", &old.id).await;
    let new_id = created["newKeyId"].as_str().expect("id").to_owned();
    let frank_secret = secret_name(&ctx, "frank").await;
    let secret = ctx
        .account
        .secret_value(&frank_secret)
        .await
        .expect("secret");
    let secret = secret["SecretAccessKey"]
        .as_str()
        .expect("value")
        .to_owned();

    for event in [
        json!({"kind": "warning", "user": "frank", "keyId": old.id, "ageDays": 85, "rotateOn": "2026-12-01"}),
        json!({"kind": "rotated", "user": "frank", "keyId": old.id, "newKeyId": new_id, "deleteAfter": "2026-12-02T10:00:00Z"}),
        json!({"kind": "failure", "user": "frank", "error": {"Error": "Transient", "Cause": "{\"errorType\":\"Transient\",\"errorMessage\":\"ses:SendEmail failed\"}"}, "execution": "arn:aws:states:us-east-1:123456789012:execution:k:x"}),
        json!({"kind": "warning", "user": "nomail", "keyId": "AKIAIOSFODNN7EXAMPLE", "ageDays": 80}),
    ] {
        let out = call!(notify::handle, &ctx.env, event.clone()).expect("notify");
        assert_eq!(out["sent"], true, "{event}: {out}");
    }
    let mails = ctx.moto.sent_emails().expect("emails");
    assert_eq!(mails.len(), 4, "{mails:?}");
    let (warning, rotated, failure, fallback) = (&mails[0], &mails[1], &mails[2], &mails[3]);
    assert_eq!(warning.to, ["frank@example.com"]);
    assert_eq!(warning.source, FROM);
    assert!(
        warning.subject.contains("will be rotated"),
        "{}",
        warning.subject
    );
    assert!(warning.body.contains(&old.id) && warning.body.contains(&frank_secret));
    assert_eq!(rotated.to, ["frank@example.com"]);
    assert!(rotated.subject.contains(&new_id));
    assert!(rotated.body.contains(&old.id) && rotated.body.contains(&frank_secret));
    assert!(rotated.body.contains("get-secret-value"));
    assert_eq!(failure.to, [ADMIN]);
    assert!(failure.subject.contains("failed") && failure.body.contains("Transient"));
    assert_eq!(fallback.to, [ADMIN], "no Email tag: the admin is told");
    assert!(fallback.body.contains("owner could not be reached"));

    // Owner and admin never share a message; an undelivered owner message goes to the admin.
    let blocked = call!(
        notify::handle,
        &ctx.env,
        json!({"kind": "blocked", "user": "frank", "keyId": old.id, "reason": "two active access keys"})
    )
    .expect("notify");
    assert_eq!(
        blocked["messageIds"].as_array().map(Vec::len),
        Some(2),
        "{blocked}"
    );
    let undelivered = call!(
        notify::handle,
        &ctx.env,
        json!({"kind": "undelivered", "user": "frank", "error": {"Error": "ServiceError", "Cause": "MessageRejected"}})
    )
    .expect("notify");
    assert_eq!(undelivered["recipients"], json!([ADMIN]));
    let mails = ctx.moto.sent_emails().expect("emails");
    assert_eq!(mails.len(), 7, "{mails:?}");
    let (to_owner, to_admin, to_admin_undelivered) = (&mails[4], &mails[5], &mails[6]);
    assert_eq!(to_owner.to, ["frank@example.com"]);
    assert_eq!(to_admin.to, [ADMIN]);
    assert!(to_owner.subject.contains("blocked") && to_admin.subject.contains("blocked"));
    assert!(to_admin_undelivered.subject.contains("not delivered"));
    assert!(to_admin_undelivered.body.contains(&frank_secret));
    for mail in &mails {
        assert!(
            !mail.body.contains(&secret) && !mail.subject.contains(&secret),
            "secret leaked into {}",
            mail.subject
        );
    }
}

#[tokio::test]
async fn a_dry_run_changes_nothing() {
    let ctx = setup().await;
    let old = user_with_aged_key(
        ctx.moto,
        &ctx.account,
        "gina",
        &[("Email", "gina@example.com")],
        120,
    )
    .await
    .expect("seed");
    let leftover = user_with_aged_key(ctx.moto, &ctx.account, "hank", &[], 300)
        .await
        .expect("seed");
    ctx.account
        .set_key_status("hank", &leftover.id, false)
        .await
        .expect("inactive");
    let hank_old = aged_key(ctx.moto, &ctx.account, "hank", 100)
        .await
        .expect("seed");
    let before = ctx.account.snapshot().await.expect("snapshot");

    let by_config = ctx.env_with(&[(vars::DRY_RUN, "true")]);
    for env in [&ctx.env, &by_config] {
        let dry = json!(true);
        let plan = call!(
            assess_key_age::handle,
            env,
            json!({"user": "gina", "dryRun": dry})
        )
        .expect("assess");
        assert_eq!(plan["dryRun"], true);
        for (user, key) in [("gina", &old.id), ("hank", &hank_old.id)] {
            let out = call!(
                create_key::handle,
                env,
                json!({"user": user, "oldKeyId": key, "dryRun": dry})
            )
            .expect("create");
            assert!(out["newKeyId"].is_null() && out["dryRun"] == true, "{out}");
            let pair = json!({"user": user, "oldKeyId": key, "dryRun": dry});
            call!(deactivate_key::handle, env, pair.clone()).expect("deactivate");
            let deleted = call!(delete_key::handle, env, pair).expect("delete");
            assert_eq!(deleted["outcome"], "wouldDelete");
        }
        let mail = call!(
            notify::handle,
            env,
            json!({"kind": "warning", "user": "gina", "dryRun": dry})
        )
        .expect("notify");
        assert_eq!(mail["sent"], false);
    }
    assert_eq!(ctx.account.snapshot().await.expect("snapshot"), before);
    assert!(ctx.moto.sent_emails().expect("emails").is_empty());
}

#[tokio::test]
async fn bad_inputs_give_typed_errors_and_change_nothing() {
    let ctx = setup().await;
    let alice = user_with_aged_key(ctx.moto, &ctx.account, "alice", &[], 91)
        .await
        .expect("seed");
    let bob = user_with_aged_key(ctx.moto, &ctx.account, "bob", &[], 10)
        .await
        .expect("seed");
    let before = ctx.account.snapshot().await.expect("snapshot");
    let env = &ctx.env;
    use ErrorType::{InvalidInput, NotFound};

    let cases: Vec<(&str, Outcome, ErrorType)> = vec![
        (
            "create-key {}",
            call!(create_key::handle, env, json!({})),
            InvalidInput,
        ),
        (
            "create-key array",
            call!(create_key::handle, env, json!([])),
            InvalidInput,
        ),
        (
            "create-key unknown user",
            call!(
                create_key::handle,
                env,
                json!({"user": "ghost", "oldKeyId": alice.id})
            ),
            NotFound,
        ),
        (
            "create-key key of bob",
            call!(
                create_key::handle,
                env,
                json!({"user": "alice", "oldKeyId": bob.id})
            ),
            NotFound,
        ),
        (
            "deactivate new key of bob",
            call!(
                deactivate_key::handle,
                env,
                json!({"user": "alice", "oldKeyId": alice.id, "newKeyId": bob.id})
            ),
            NotFound,
        ),
        (
            "delete key of alice as bob",
            call!(
                delete_key::handle,
                env,
                json!({"user": "bob", "oldKeyId": alice.id, "newKeyId": bob.id})
            ),
            NotFound,
        ),
        (
            "assess unknown user",
            call!(assess_key_age::handle, env, json!({"user": "ghost"})),
            NotFound,
        ),
        (
            "assess user is a number",
            call!(assess_key_age::handle, env, json!({"user": 5})),
            InvalidInput,
        ),
        (
            "assess missing user",
            call!(assess_key_age::handle, env, json!({"dryRun": true})),
            InvalidInput,
        ),
        (
            "notify unknown user",
            call!(
                notify::handle,
                env,
                json!({"kind": "warning", "user": "ghost"})
            ),
            NotFound,
        ),
        (
            "list-users unknown user",
            call!(list_users::handle, env, json!({"users": ["ghost"]})),
            NotFound,
        ),
        (
            "list-users string",
            call!(list_users::handle, env, json!("alice")),
            InvalidInput,
        ),
    ];
    for (name, result, expected) in cases {
        let err = result.expect_err(name);
        assert_eq!(err.0, expected, "{name}: {}", err.1);
    }
    assert_eq!(ctx.account.snapshot().await.expect("snapshot"), before);
    assert!(ctx.moto.sent_emails().expect("emails").is_empty());
}

#[tokio::test]
async fn the_scan_lists_assesses_and_starts_one_execution_per_actionable_user() {
    let ctx = setup().await;
    user_with_aged_key(ctx.moto, &ctx.account, "due", &[], 95)
        .await
        .expect("seed");
    user_with_aged_key(ctx.moto, &ctx.account, "warned", &[], 85)
        .await
        .expect("seed");
    user_with_aged_key(ctx.moto, &ctx.account, "fresh", &[], 3)
        .await
        .expect("seed");
    ctx.account.create_user("keyless", &[]).await.expect("seed");

    let page = call!(list_users::handle, &ctx.env, json!({"pageSize": 1000})).expect("list");
    let mut users: Vec<String> = serde_json::from_value(page["users"].clone()).expect("names");
    users.sort();
    assert_eq!(users, ["due", "fresh", "keyless", "warned"]);
    assert!(page["nextMarker"].is_null());

    let batch = call!(assess_key_age::handle, &ctx.env, json!({"users": users})).expect("assess");
    assert_eq!(batch["seen"], 4);
    assert_eq!(
        batch["counts"],
        json!({"none": 2, "exempt": 0, "warn": 1, "rotate": 1, "blocked": 0, "finish": 0, "cutover": 0, "retire": 0})
    );
    let listed = ctx.env_with(&[(vars::ASSESS_STRATEGY, "list-access-keys")]);
    let by_listing =
        call!(assess_key_age::handle, &listed, json!({"users": users})).expect("assess");
    assert_eq!(
        batch, by_listing,
        "the credential report and per-user listing agree"
    );
    let actionable = batch["actionable"].clone();
    assert_eq!(
        actionable,
        json!([{"user": "due", "action": "rotate"}, {"user": "warned", "action": "warn"}])
    );

    // Per-user executions of a trivial state machine (moto does not run it here).
    let machine = ctx
        .account
        .sfn
        .create_state_machine()
        .name("keyrotor")
        .role_arn("arn:aws:iam::123456789012:role/keyrotor-states")
        .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
        .send()
        .await
        .expect("state machine");
    let env = ctx.env_with(&[(vars::STATE_MACHINE_ARN, machine.state_machine_arn())]);
    let event = json!({"users": actionable, "scanStartedAt": "2026-11-25T06:00:00Z"});
    let first = call!(start_rotations::handle, &env, event.clone()).expect("start");
    assert_eq!(
        (first["started"].clone(), first["alreadyStarted"].clone()),
        (json!(2), json!(0))
    );
    // Whether the first executions are still running (same name and input: Step Functions
    // returns them) or finished (ExecutionAlreadyExists), a rerun starts nothing new.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rerun = call!(start_rotations::handle, &env, event).expect("rerun");
    assert_eq!(
        (rerun["started"].clone(), rerun["alreadyStarted"].clone()),
        (json!(0), json!(2))
    );
    let listed = ctx
        .account
        .sfn
        .list_executions()
        .state_machine_arn(machine.state_machine_arn())
        .send()
        .await
        .expect("list");
    let mut names: Vec<&str> = listed.executions().iter().map(|e| e.name()).collect();
    names.sort();
    assert_eq!(names.len(), 2);
    assert!(
        names.iter().all(|n| n.starts_with("scheduled-20261125-")),
        "{names:?}"
    );
}

#[tokio::test]
async fn a_scan_page_calls_nothing_per_user_whose_keys_need_nothing() {
    let ctx = setup().await;
    let mut users = vec!["due".to_owned(), "warned".to_owned(), "rotated".to_owned()];
    user_with_aged_key(ctx.moto, &ctx.account, "due", &[], 95)
        .await
        .expect("seed");
    user_with_aged_key(ctx.moto, &ctx.account, "warned", &[], 85)
        .await
        .expect("seed");
    // An old key deactivated beside a new one: maybe a rotation to finish.
    let old = user_with_aged_key(ctx.moto, &ctx.account, "rotated", &[], 100)
        .await
        .expect("seed");
    ctx.account
        .set_key_status("rotated", &old.id, false)
        .await
        .expect("seed");
    ctx.account.create_key("rotated").await.expect("seed");
    for i in 0..30 {
        let name = format!("fresh{i}");
        ctx.account.create_user(&name, &[]).await.expect("seed");
        ctx.account.create_key(&name).await.expect("seed");
        users.push(name);
    }
    let proxy = FaultProxy::start(ctx.moto.port()).expect("proxy");
    let sdk = ctx
        .moto
        .sdk_config()
        .to_builder()
        .endpoint_url(proxy.endpoint())
        .build();
    let mut outputs = Vec::new();
    for strategy in ["credential-report", "list-access-keys"] {
        proxy.reset().expect("reset");
        let env = env_at(&sdk, &[(vars::ASSESS_STRATEGY, strategy)]);
        let out = call!(assess_key_age::handle, &env, json!({"users": users})).expect("assess");
        assert_eq!(out["seen"], 33, "{strategy}");
        assert_eq!(out["counts"]["none"], 31, "{strategy}");
        let calls = proxy.calls().expect("calls");
        let count = |op: &str| calls.get(op).copied().unwrap_or(0);
        // Users due something are planned from key ages and tags; only the one whose
        // keys may be a rotation under way gets the whole live look; nobody else gets any.
        assert_eq!(count("iam:ListUserTags"), 3, "{strategy}: {calls:?}");
        assert_eq!(
            count("secretsmanager:DescribeSecret"),
            1,
            "{strategy}: {calls:?}"
        );
        match strategy {
            "credential-report" => {
                assert_eq!(count("iam:ListAccessKeys"), 1, "{calls:?}");
                let report_calls =
                    count("iam:GetCredentialReport") + count("iam:GenerateCredentialReport");
                assert!((1..=3).contains(&report_calls), "{calls:?}");
            }
            _ => {
                assert_eq!(count("iam:ListAccessKeys"), 33 + 1, "{calls:?}");
                assert_eq!(count("iam:GetCredentialReport"), 0, "{calls:?}");
            }
        }
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1], "both strategies agree");
}
