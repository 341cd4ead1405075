//! deliver-key in-process: a fake GitHub that opens what it receives with its private key,
//! a webhook receiver that checks the signature, and SSM as a map. The emulator suite
//! (`tests/tests/it/delivery.rs`) runs the real binary against moto and a libsodium fake.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crypto_box::aead::OsRng;
use crypto_box::SecretKey;
use serde_json::{json, Value};

use super::*;
use crate::http::{Response, Unreachable};
use keyrotor_core::config::vars;

const USER: &str = "alice";
const NEW: &str = "AKIANEWKEY0000000001";
const SECRET: &str = "new/secret+Access+Key0000000000000000000";
const TOKEN: &str = "github_pat_TOKEN0000";
const HOOK_KEY: &str = "hook-signing-key";
const TOKEN_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/github-AbCdEf";
const HOOK_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/webhook-AbCdEf";

fn denied(operation: &'static str) -> Error {
    Error::Aws {
        operation,
        kind: keyrotor_core::error::AwsErrorKind::AccessDenied,
        code: "AccessDeniedException".into(),
        message: "not allowed".into(),
        source: "denied".into(),
    }
}

struct FakeHandoffs;

impl HandoffPort for FakeHandoffs {
    async fn seal(&self, key: &NewAccessKey) -> Result<String> {
        Ok(format!(
            "{}|{}|{}",
            key.user,
            key.key_id,
            key.secret.expose()
        ))
    }
    async fn open(&self, user: &str, key_id: &str, sealed: &str) -> Result<NewAccessKey> {
        let parts: Vec<&str> = sealed.splitn(3, '|').collect();
        match parts.as_slice() {
            [u, k, s] if *u == user && *k == key_id => Ok(NewAccessKey {
                user: user.into(),
                key_id: key_id.into(),
                secret: keyrotor_core::secret::SecretAccessKey::new((*s).into()),
            }),
            _ => Err(denied("kms:Decrypt")),
        }
    }
}

#[derive(Default)]
struct FakeParameters {
    held: Mutex<BTreeMap<String, (String, String)>>,
    puts: Mutex<u32>,
}

impl ParametersPort for FakeParameters {
    async fn description(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .held
            .lock()
            .expect("lock")
            .get(name)
            .map(|(_, d)| d.clone()))
    }
    async fn put_secure(&self, name: &str, value: &str, description: &str) -> Result<()> {
        *self.puts.lock().expect("lock") += 1;
        if name.contains("denied") {
            return Err(denied("ssm:PutParameter"));
        }
        self.held
            .lock()
            .expect("lock")
            .insert(name.into(), (value.into(), description.into()));
        Ok(())
    }
}

struct FakeSettings;

impl SettingsPort for FakeSettings {
    async fn read(&self, arn: &str) -> Result<Zeroizing<String>> {
        match arn {
            TOKEN_ARN => Ok(Zeroizing::new(TOKEN.into())),
            HOOK_ARN => Ok(Zeroizing::new(HOOK_KEY.into())),
            _ => Err(Error::NotFound(arn.to_owned())),
        }
    }
}

/// A notice as the webhook received it: parsed, its headers, and the raw body it signed.
type Received = (Value, BTreeMap<String, String>, Vec<u8>);

/// GitHub's two endpoints (and the secret's metadata) for the repositories it knows, plus
/// a webhook receiver at `/hook`.
struct FakeWeb {
    private: SecretKey,
    repositories: Vec<&'static str>,
    /// Secrets as GitHub keeps them, decrypted: path to (value, updated_at).
    secrets: Mutex<BTreeMap<String, (String, DateTime<Utc>)>>,
    /// A repository whose calls are rate limited, and for how long.
    limited: Option<(&'static str, u64)>,
    puts: Mutex<u32>,
    notices: Mutex<Vec<Received>>,
    seen: Mutex<Vec<String>>,
}

impl FakeWeb {
    fn new(repositories: Vec<&'static str>) -> Self {
        FakeWeb {
            private: SecretKey::generate(&mut OsRng),
            repositories,
            secrets: Mutex::default(),
            limited: None,
            puts: Mutex::default(),
            notices: Mutex::default(),
            seen: Mutex::default(),
        }
    }

    fn answer(status: u16, body: Value) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }

    fn github(&self, request: &Request, path: &str) -> Response {
        let auth = request
            .headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .map(|(_, v)| v.as_str());
        if auth != Some(&format!("Bearer {TOKEN}")) {
            return Self::answer(401, json!({"message": "Bad credentials"}));
        }
        let Some(rest) = path.strip_prefix("/repos/") else {
            return Self::answer(404, json!({"message": "Not Found"}));
        };
        let repository = rest.splitn(3, '/').take(2).collect::<Vec<_>>().join("/");
        if let Some((limited, secs)) = self.limited {
            if limited == repository {
                let mut r = Self::answer(403, json!({"message": "API rate limit exceeded"}));
                r.headers = vec![
                    ("x-ratelimit-remaining".into(), "0".into()),
                    ("retry-after".into(), secs.to_string()),
                ];
                return r;
            }
        }
        if !self.repositories.contains(&repository.as_str()) {
            return Self::answer(404, json!({"message": "Not Found"}));
        }
        if path.ends_with("/public-key") && request.method == "GET" {
            let public = STANDARD.encode(self.private.public_key().as_bytes());
            return Self::answer(200, json!({"key_id": "568250167242549743", "key": public}));
        }
        match request.method {
            "GET" => match self.secrets.lock().expect("lock").get(path) {
                Some((_, at)) => Self::answer(
                    200,
                    json!({"name": "x", "created_at": at, "updated_at": at}),
                ),
                None => Self::answer(404, json!({"message": "Not Found"})),
            },
            "PUT" => {
                *self.puts.lock().expect("lock") += 1;
                let body: Value =
                    serde_json::from_slice(request.body.as_deref().unwrap_or_default())
                        .expect("json");
                assert_eq!(body["key_id"], "568250167242549743");
                let sealed = STANDARD
                    .decode(body["encrypted_value"].as_str().expect("value"))
                    .expect("base64");
                let plain = self.private.unseal(&sealed).expect("sealed to our key");
                let value = String::from_utf8(plain).expect("utf8");
                self.secrets
                    .lock()
                    .expect("lock")
                    .insert(path.into(), (value, Utc::now()));
                Self::answer(201, json!({}))
            }
            _ => Self::answer(405, json!({})),
        }
    }
}

impl HttpPort for FakeWeb {
    async fn send(&self, request: Request) -> std::result::Result<Response, Unreachable> {
        self.seen.lock().expect("lock").push(format!(
            "{} {} {:?} {}",
            request.method,
            request.url,
            request.headers,
            String::from_utf8_lossy(request.body.as_deref().unwrap_or_default())
        ));
        if let Some(path) = request.url.strip_prefix("https://api.github.test") {
            return Ok(self.github(&request, path));
        }
        if request.url.starts_with("https://hooks.test/down") {
            return Err(Unreachable("the connection failed".into()));
        }
        if request.url.starts_with("https://hooks.test/") {
            let headers = request
                .headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect();
            let body: Value =
                serde_json::from_slice(request.body.as_deref().unwrap_or_default()).expect("json");
            self.notices.lock().expect("lock").push((
                body,
                headers,
                request.body.unwrap_or_default(),
            ));
            return Ok(Self::answer(204, json!({})));
        }
        Err(Unreachable("no such host".into()))
    }
}

fn deps(
    destinations: Value,
    web: FakeWeb,
) -> Deps<FakeHandoffs, FakeParameters, FakeSettings, FakeWeb> {
    let vars: BTreeMap<&str, String> = BTreeMap::from([
        (vars::DESTINATIONS, destinations.to_string()),
        (vars::DELIVERY_KMS_KEY_ID, "alias/keyrotor-delivery".into()),
        (vars::GITHUB_TOKEN_SECRET_ARN, TOKEN_ARN.into()),
        (vars::GITHUB_API_URL, "https://api.github.test".into()),
        (vars::WEBHOOK_KEY_SECRET_ARN, HOOK_ARN.into()),
        (vars::OVERLAP_SECONDS, "3600".into()),
    ]);
    Deps {
        config: Config::from_lookup(|v| vars.get(v).cloned()).expect("config"),
        handoffs: Some(FakeHandoffs),
        parameters: FakeParameters::default(),
        settings: FakeSettings,
        http: web,
    }
}

fn every_kind() -> Value {
    json!({USER: [
        {"type": "ssm", "parameter": "/ci/alice/aws"},
        {"type": "github", "repository": "acme/deploy"},
        {"type": "github", "repository": "acme/deploy", "environment": "production",
         "accessKeyIdName": "PROD_KEY_ID", "secretAccessKeyName": "PROD_SECRET"},
        {"type": "webhook", "url": "https://hooks.test/keyrotor?token=hooktoken"}
    ]})
}

fn input() -> Value {
    json!({
        "user": USER,
        "oldKeyId": "AKIAOLDKEY0000000001",
        "newKeyId": NEW,
        "secretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-access-key/AIDA-x",
        "handoff": {"sealed": format!("{USER}|{NEW}|{SECRET}"), "sealedAt": Utc::now() - Duration::seconds(5)},
    })
}

fn outcomes(out: &DeliverKeyOutput) -> Vec<(String, DeliveryOutcome)> {
    out.delivery
        .destinations
        .iter()
        .map(|l| (l.destination.clone(), l.outcome))
        .collect()
}

/// Nothing keyrotor reports may hold the secret or a token.
fn clean(out: &DeliverKeyOutput) {
    let text = serde_json::to_string(out).expect("json");
    for secret in [SECRET, TOKEN, HOOK_KEY, "hooktoken"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test(start_paused = true)]
async fn every_destination_gets_the_new_key_as_it_demands_it() {
    let deps = deps(every_kind(), FakeWeb::new(vec!["acme/deploy"]));
    let out = handle(input(), &deps).await.expect("delivered");
    clean(&out);
    assert!(
        outcomes(&out)
            .iter()
            .all(|(_, o)| *o == DeliveryOutcome::Delivered),
        "{out:#?}"
    );
    assert_eq!((out.delivery.delivered, out.delivery.failed), (4, 0));

    // SSM holds the same document as the user's secret, and names the key.
    let held = deps.parameters.held.lock().expect("lock").clone();
    let (value, description) = &held["/ci/alice/aws"];
    let doc: Value = serde_json::from_str(value).expect("json");
    assert_eq!(
        (doc["AccessKeyId"].as_str(), doc["SecretAccessKey"].as_str()),
        (Some(NEW), Some(SECRET))
    );
    assert!(description.contains(NEW), "{description}");

    // GitHub opened both secrets of both places with its private key.
    let github = deps.http.secrets.lock().expect("lock").clone();
    let value = |path: &str| github.get(path).map(|(v, _)| v.as_str());
    assert_eq!(
        value("/repos/acme/deploy/actions/secrets/AWS_ACCESS_KEY_ID"),
        Some(NEW)
    );
    assert_eq!(
        value("/repos/acme/deploy/actions/secrets/AWS_SECRET_ACCESS_KEY"),
        Some(SECRET)
    );
    assert_eq!(
        value("/repos/acme/deploy/environments/production/secrets/PROD_KEY_ID"),
        Some(NEW)
    );
    assert_eq!(
        value("/repos/acme/deploy/environments/production/secrets/PROD_SECRET"),
        Some(SECRET)
    );
    // And nothing but sealed boxes went over the wire.
    for request in deps.http.seen.lock().expect("lock").iter() {
        assert!(!request.contains(SECRET), "{request}");
    }

    // The webhook got a signed notice with no secret in it.
    let notices = deps.http.notices.lock().expect("lock").clone();
    let (body, headers, raw) = &notices[0];
    assert_eq!(body["accessKeyId"], NEW);
    assert_eq!(body["user"], USER);
    assert!(!body.to_string().contains(SECRET));
    let at = DateTime::parse_from_rfc3339(&headers[delivery::TIMESTAMP_HEADER])
        .expect("timestamp")
        .with_timezone(&Utc);
    let expected = delivery::sign(HOOK_KEY.as_bytes(), at, raw).expect("sign");
    assert_eq!(headers[delivery::SIGNATURE_HEADER], expected);
    let deadline: DateTime<Utc> =
        serde_json::from_value(body["deadline"].clone()).expect("deadline");
    assert!(
        deadline > Utc::now() + Duration::minutes(59),
        "the window's cap: {deadline}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rerun_writes_no_destination_that_holds_the_key_already() {
    let deps = deps(every_kind(), FakeWeb::new(vec!["acme/deploy"]));
    handle(input(), &deps).await.expect("first");
    let (ssm, github) = (
        *deps.parameters.puts.lock().expect("lock"),
        *deps.http.puts.lock().expect("lock"),
    );
    let again = handle(input(), &deps).await.expect("again");
    assert_eq!(*deps.parameters.puts.lock().expect("lock"), ssm);
    assert_eq!(*deps.http.puts.lock().expect("lock"), github);
    let got = outcomes(&again);
    assert_eq!(got[0].1, DeliveryOutcome::AlreadyHeld);
    assert_eq!(got[1].1, DeliveryOutcome::AlreadyHeld);
    assert_eq!(got[2].1, DeliveryOutcome::AlreadyHeld);
    // A notice is sent again, with the same delivery ID for the receiver to drop.
    let notices = deps.http.notices.lock().expect("lock").clone();
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0].0["deliveryId"], notices[1].0["deliveryId"]);
}

#[tokio::test(start_paused = true)]
async fn github_refusals_are_reported_per_destination_and_the_rest_delivered() {
    let mut web = FakeWeb::new(vec!["acme/deploy", "acme/limited"]);
    web.limited = Some(("acme/limited", 3600));
    let deps = deps(
        json!({USER: [
            {"type": "github", "repository": "acme/missing"},
            {"type": "github", "repository": "acme/limited"},
            {"type": "ssm", "parameter": "/ci/denied"},
            {"type": "webhook", "url": "https://hooks.test/down"},
            {"type": "github", "repository": "acme/deploy"}
        ]}),
        web,
    );
    let out = handle(input(), &deps).await.expect("reported, not failed");
    clean(&out);
    let why: Vec<String> = out
        .delivery
        .destinations
        .iter()
        .map(|l| format!("{} {:?}", l.outcome, l.why))
        .collect();
    assert!(
        why[0].starts_with("failed") && why[0].contains("404"),
        "{why:?}"
    );
    assert!(
        why[1].contains("rate limit") && why[1].contains("3600 s"),
        "{why:?}"
    );
    assert!(why[2].contains("AccessDenied"), "{why:?}");
    assert!(why[3].contains("connection failed"), "{why:?}");
    assert!(why[4].starts_with("delivered"), "{why:?}");
    assert_eq!((out.delivery.delivered, out.delivery.failed), (1, 4));

    // A bad token is a refusal of its own.
    let bad = deps_with_token("github_pat_WRONG");
    let out = handle(input(), &bad).await.expect("reported");
    let line = &out.delivery.destinations[0];
    assert_eq!(line.outcome, DeliveryOutcome::Failed);
    assert!(
        line.why.as_deref().unwrap_or_default().contains("401"),
        "{line:?}"
    );
    clean(&out);
}

fn deps_with_token(
    token: &'static str,
) -> Deps<FakeHandoffs, FakeParameters, TokenSettings, FakeWeb> {
    let d = deps(
        json!({USER: [{"type": "github", "repository": "acme/deploy"}]}),
        FakeWeb::new(vec!["acme/deploy"]),
    );
    Deps {
        config: d.config,
        handoffs: d.handoffs,
        parameters: d.parameters,
        settings: TokenSettings(token),
        http: d.http,
    }
}

struct TokenSettings(&'static str);

impl SettingsPort for TokenSettings {
    async fn read(&self, _: &str) -> Result<Zeroizing<String>> {
        Ok(Zeroizing::new(self.0.into()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_brief_rate_limit_is_waited_out() {
    let mut web = FakeWeb::new(vec!["acme/deploy"]);
    web.limited = Some(("acme/deploy", 2));
    let deps = deps(
        json!({USER: [{"type": "github", "repository": "acme/deploy"}]}),
        web,
    );
    let out = handle(input(), &deps).await.expect("reported");
    // Still limited after every wait: three tries, then failed, and not before.
    let seen = deps.http.seen.lock().expect("lock").len();
    assert_eq!(seen, 3, "three tries");
    assert_eq!(
        out.delivery.destinations[0].outcome,
        DeliveryOutcome::Failed
    );
}

#[tokio::test(start_paused = true)]
async fn destinations_left_when_the_time_is_spent_are_reported_not_tried() {
    // Twelve unreachable webhooks would take 12 x 3 s of pauses, and each try no time (the
    // fake answers at once): give each try 10 s instead, as a hanging server would.
    struct Hanging;
    impl HttpPort for Hanging {
        async fn send(&self, _: Request) -> std::result::Result<Response, Unreachable> {
            tokio::time::sleep(crate::http::TIMEOUT).await;
            Err(Unreachable("no answer within 10s".into()))
        }
    }
    let hooks: Vec<Value> = (0..10)
        .map(|i| json!({"type": "webhook", "url": format!("https://hooks.test/{i}")}))
        .collect();
    let d = deps(json!({ USER: hooks }), FakeWeb::new(vec![]));
    let deps = Deps {
        config: d.config,
        handoffs: d.handoffs,
        parameters: d.parameters,
        settings: d.settings,
        http: Hanging,
    };
    let started = tokio::time::Instant::now();
    let out = handle(input(), &deps).await.expect("reported");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(300),
        "inside the timeout"
    );
    let whys: Vec<&str> = out
        .delivery
        .destinations
        .iter()
        .map(|l| l.why.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(out.delivery.failed, 10);
    assert!(whys[0].contains("no answer"), "{whys:?}");
    assert!(whys[9].starts_with("not tried"), "{whys:?}");
}

#[tokio::test(start_paused = true)]
async fn nothing_is_sent_in_a_dry_run_or_without_a_handoff_that_opens() {
    let deps = deps(every_kind(), FakeWeb::new(vec!["acme/deploy"]));
    let mut dry = input();
    dry["dryRun"] = json!(true);
    dry["newKeyId"] = Value::Null;
    dry["handoff"] = Value::Null;
    let out = handle(dry, &deps).await.expect("dry run");
    assert!(outcomes(&out)
        .iter()
        .all(|(_, o)| *o == DeliveryOutcome::WouldDeliver));

    let mut resumed = input();
    resumed["handoff"] = Value::Null;
    resumed["resumed"] = json!(true);
    let out = handle(resumed, &deps).await.expect("resumed");
    assert_eq!(out.delivery.failed, 4);
    assert!(out
        .delivery
        .note
        .as_deref()
        .unwrap_or_default()
        .contains("by hand"));

    let mut wrong = input();
    wrong["handoff"]["sealed"] = json!(format!("bob|{NEW}|x"));
    let out = handle(wrong, &deps).await.expect("wrong handoff");
    assert_eq!(out.delivery.failed, 4);

    assert!(
        deps.http.seen.lock().expect("lock").is_empty(),
        "no request went out"
    );
    assert_eq!(*deps.parameters.puts.lock().expect("lock"), 0);

    let mut other = input();
    other["user"] = json!("bob");
    let out = handle(other, &deps).await.expect("no destinations");
    assert_eq!(out.delivery, DeliveryReport::default());
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_read() {
    let deps = deps(every_kind(), FakeWeb::new(vec![]));
    for bad in [
        json!([]),
        json!({"user": USER}),
        json!({"user": "a b", "oldKeyId": "AKIAOLDKEY0000000001"}),
        json!({"user": USER, "oldKeyId": "AKIAOLDKEY0000000001", "extra": 1}),
        // The account is serve_with_accounts' to take out, never the handler's.
        json!({"user": USER, "oldKeyId": "AKIAOLDKEY0000000001", "account": {"id": "222222222222"}}),
        json!({"user": USER, "oldKeyId": "AKIAOLDKEY0000000001", "newKeyId": null}),
    ] {
        let err = handle(bad.clone(), &deps)
            .await
            .expect_err(&bad.to_string());
        assert_eq!(
            err.error_type(),
            keyrotor_core::ErrorType::InvalidInput,
            "{bad}: {err}"
        );
    }
    assert!(deps.http.seen.lock().expect("lock").is_empty());
}
