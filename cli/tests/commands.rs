//! Every `keyrotor` subcommand against the local stack (moto executing the real state
//! machine, the real function binaries), run as a process the way an operator runs it.

use std::future::Future;
use std::process::Output;

use keyrotor_localstack::account::user_with_aged_key;
use keyrotor_localstack::stack::{on_shared_stack, LocalStack, StackOptions};
use serde_json::Value;

fn on_stack<F, Fut>(test: F)
where
    F: FnOnce(&'static LocalStack) -> Fut,
    Fut: Future<Output = ()>,
{
    on_shared_stack(stack_options, test);
}

/// The local stack with a 6 s deletion delay: the Wait before deletion ends at the
/// deactivation plus the delay, so it lasts the delay less the rotated mail's time, and
/// `--wait`'s progress (a look a second) must catch it.
fn stack_options() -> StackOptions {
    StackOptions {
        deletion_delay_secs: 6,
        ..StackOptions::default()
    }
}

/// Runs `keyrotor ARGS` against the stack, with the state machine found by discovery.
fn keyrotor(stack: &LocalStack, args: &[&str]) -> Output {
    stack
        .operator_command(std::path::Path::new(env!("CARGO_BIN_EXE_keyrotor")))
        .args(args)
        .output()
        .expect("keyrotor runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// JSON output says where the command acted: the local stack's account and region, and
/// the state machines whose names end as given.
fn assert_context(value: &Value, machines: &[&str]) {
    let context = &value["context"];
    assert_eq!(context["account"], "123456789012", "{value}");
    assert_eq!(context["region"], "us-east-1", "{value}");
    assert!(context["identity"].is_string(), "{value}");
    let named: Vec<&str> = context["stateMachines"]
        .as_array()
        .expect("stateMachines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(named.len(), machines.len(), "{value}");
    for (arn, suffix) in named.iter().zip(machines) {
        assert!(arn.ends_with(suffix), "{arn} is not the {suffix} machine");
    }
}

/// The command exited with `code`; the message shows all it printed.
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        stdout(out),
        stderr(out)
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("JSON output ({e}): {}", stdout(out)))
}

#[test]
fn report_passes_a_compliant_account_and_fails_an_overdue_key() {
    on_stack(|stack| async move {
        let (m, a) = (&stack.moto, &stack.account);
        user_with_aged_key(m, a, "fresh", &[], 10)
            .await
            .expect("seed");
        user_with_aged_key(m, a, "warned", &[], 85)
            .await
            .expect("seed");
        user_with_aged_key(m, a, "exempt", &[("key-rotation:exempt", "true")], 200)
            .await
            .expect("seed");
        a.create_user("keyless", &[]).await.expect("seed");

        let out = keyrotor(stack, &["report"]);
        assert_exit(&out, 0);
        let table = stdout(&out);
        assert!(
            table.contains("compliant: no active key past the rotation age"),
            "{table}"
        );
        // Where it acts, on stderr (stdout stays the report).
        let said = stderr(&out);
        assert!(
            said.lines().any(|l| l.starts_with("keyrotor: account 123456789012, region us-east-1, state machine arn:aws:states:us-east-1:123456789012:stateMachine:")
                && l.contains(" (as arn:aws:")),
            "{said}"
        );
        assert!(!table.contains("keyrotor: account"));
        // The local stack has no deployed functions to read the policy from: the report
        // says it used the shell's settings, and why.
        assert!(
            stderr(&out).contains(
                "policy: this shell's KEYROTOR_* variables (the deployed policy could not be read"
            ),
            "{}",
            stderr(&out)
        );
        assert!(
            table.contains("exempt: never rotated") && table.contains("no access keys"),
            "{table}"
        );

        user_with_aged_key(m, a, "overdue", &[], 120)
            .await
            .expect("seed");
        let out = keyrotor(stack, &["report"]);
        assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
        assert!(stdout(&out).contains("NOT compliant: 1 active key(s) past 90 days"));

        let out = keyrotor(stack, &["report", "--format", "json"]);
        assert_eq!(out.status.code(), Some(3));
        let report = json(&out);
        assert_context(&report, &["keyrotor-rotate"]);
        assert_eq!(report["overdueKeys"], 1);
        assert_eq!(report["policyDeployed"], false);
        let keys = report["keys"].as_array().expect("keys");
        let overdue: Vec<&Value> = keys.iter().filter(|k| k["overdue"] == true).collect();
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0]["user"], "overdue");
        assert_eq!(overdue[0]["ageDays"], 120);
        // The seeded key signed nothing: it is listed as never used.
        assert_eq!(overdue[0]["unused"], "never used", "{report:#}");
        let listed = keys.iter().filter(|k| !k["unused"].is_null()).count();
        assert_eq!(report["unusedKeys"], listed, "{report:#}");
        let out = keyrotor(stack, &["report"]);
        assert!(
            stdout(&out).contains("Unused keys (never used (retirement is off"),
            "{}",
            stdout(&out)
        );

        let out = keyrotor(stack, &["report", "--format", "csv"]);
        let csv = stdout(&out);
        assert!(
            csv.starts_with("user,key_id,status,age_days,last_used,next,overdue,unused\n"),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), 1 + 5, "{csv}");

        // The auditors' page: the same report, parsed strictly.
        let out = keyrotor(stack, &["report", "--format", "html"]);
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
        assert_page_matches(&stdout(&out), &report);
    });
}

/// The HTML report says what the JSON report says: every key in the table, the
/// non-compliant ones first; every active key in one bar of the age chart; the policy and
/// where it was made.
fn assert_page_matches(page: &str, report: &Value) {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(page, options).expect("the page is well-formed");
    let by_id = |id: &str| {
        doc.descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no #{id} in the page"))
    };
    let text = |id: &str| {
        by_id(id)
            .descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect::<String>()
    };
    assert_eq!(text("rotate-after"), report["rotateAfterDays"].to_string());
    assert_eq!(
        text("account"),
        report["context"]["account"].as_str().expect("account")
    );
    assert_eq!(text("region"), "us-east-1");
    assert!(text("policy-source").contains("KEYROTOR_* variables"));
    assert!(text("verdict").contains("NOT compliant: 1 active key(s)"));
    // No script, no link, no request: the page stands alone.
    for tag in ["script", "link", "img", "iframe"] {
        assert!(!doc.descendants().any(|n| n.has_tag_name(tag)), "<{tag}>");
    }

    let keys = report["keys"].as_array().expect("keys");
    let rows: Vec<roxmltree::Node> = by_id("keys")
        .descendants()
        .filter(|n| n.has_tag_name("tbody"))
        .flat_map(|b| b.children().filter(|n| n.has_tag_name("tr")))
        .collect();
    assert_eq!(rows.len(), keys.len(), "one row per key (and keyless user)");
    let overdue = usize::try_from(report["overdueKeys"].as_u64().expect("count")).expect("small");
    let flags: Vec<&str> = rows
        .iter()
        .map(|r| r.attribute("data-overdue").expect("data-overdue"))
        .collect();
    assert!(flags[..overdue].iter().all(|f| *f == "true"), "{flags:?}");
    assert!(flags[overdue..].iter().all(|f| *f == "false"), "{flags:?}");
    for key in keys.iter().filter(|k| k["keyId"].is_string()) {
        let id = key["keyId"].as_str().expect("id");
        assert!(
            rows.iter()
                .any(|r| r.descendants().any(|n| n.text() == Some(id))),
            "{id} is in the table"
        );
    }

    let bars: Vec<roxmltree::Node> = by_id("age-chart")
        .descendants()
        .filter(|n| {
            n.has_tag_name("rect") && n.attribute("class").is_some_and(|c| c.starts_with("bar"))
        })
        .collect();
    let count = |n: &roxmltree::Node| -> u64 {
        n.attribute("data-count")
            .and_then(|c| c.parse().ok())
            .expect("data-count")
    };
    let active: Vec<i64> = keys
        .iter()
        .filter(|k| k["status"] == "Active")
        .filter_map(|k| k["ageDays"].as_i64())
        .collect();
    assert_eq!(bars.iter().map(count).sum::<u64>(), active.len() as u64);
    for age in active {
        let bar = bars
            .iter()
            .find(|b| {
                let from: i64 = b
                    .attribute("data-from")
                    .and_then(|f| f.parse().ok())
                    .expect("from");
                let to: Option<i64> = b.attribute("data-to").and_then(|t| t.parse().ok());
                from <= age && to.is_none_or(|to| age <= to)
            })
            .unwrap_or_else(|| panic!("no bar for {age} days"));
        assert!(count(bar) >= 1);
    }
}

/// A fake IAM Identity Center portal on loopback: answers GetRoleCredentials for one
/// account, role and access token, and counts the requests it served.
fn sso_portal(token: &'static str) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                request.push(line.trim_end().to_owned());
            }
            let first = request.first().cloned().unwrap_or_default();
            let bearer = request
                .iter()
                .any(|h| h.to_ascii_lowercase() == format!("x-amz-sso_bearer_token: {token}"));
            let wanted = first.starts_with("GET /federation/credentials?")
                && first.contains("role_name=KeyrotorOperator")
                && first.contains("account_id=123456789012");
            let expiration = (chrono::Utc::now() + chrono::Duration::hours(1)).timestamp_millis();
            let (status, body) = if wanted && bearer {
                (
                    "200 OK",
                    format!(
                        r#"{{"roleCredentials":{{"accessKeyId":"ASIASSOTESTKEY000001","secretAccessKey":"sso-test-secret","sessionToken":"sso-test-session","expiration":{expiration}}}}}"#
                    ),
                )
            } else {
                (
                    "401 Unauthorized",
                    r#"{"message":"Session token not found or invalid"}"#.to_owned(),
                )
            };
            log.lock().unwrap_or_else(|p| p.into_inner()).push(first);
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nx-amzn-errortype: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                if status.starts_with("200") { "" } else { "UnauthorizedException" },
                body.len()
            );
        }
    });
    (port, seen)
}

/// An operator's machine signed in with `aws sso login`: a profile of the modern
/// sso-session form in HOME/.aws/config and the cached access token, valid for `valid`.
fn sso_home(name: &str, token: &str, valid: chrono::Duration) -> std::path::PathBuf {
    use sha1::Digest;
    let home = std::env::temp_dir().join(format!("keyrotor-{name}-{}", std::process::id()));
    let cache = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).expect("home");
    std::fs::write(
        home.join(".aws/config"),
        "[profile keyrotor-sso]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = KeyrotorOperator\nregion = us-east-1\n\n\
         [sso-session corp]\nsso_region = us-east-1\nsso_start_url = https://d-0000000000.awsapps.com/start\n",
    )
    .expect("config");
    let digest = sha1::Sha1::digest(b"corp");
    let file: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let expires = (chrono::Utc::now() + valid).format("%Y-%m-%dT%H:%M:%SZ");
    std::fs::write(
        cache.join(format!("{file}.json")),
        format!(r#"{{"accessToken":"{token}","expiresAt":"{expires}","region":"us-east-1","startUrl":"https://d-0000000000.awsapps.com/start"}}"#),
    )
    .expect("token");
    home
}

#[test]
fn an_iam_identity_center_profile_signs_the_commands_in() {
    on_stack(|stack| async move {
        const TOKEN: &str = "sso-access-token-for-tests";
        let (port, seen) = sso_portal(TOKEN);
        let run = |home: &std::path::Path| {
            stack
                .operator_command(std::path::Path::new(env!("CARGO_BIN_EXE_keyrotor")))
                .env("HOME", home)
                .env_remove("AWS_CONFIG_FILE")
                .env_remove("AWS_SHARED_CREDENTIALS_FILE")
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_SESSION_TOKEN")
                .env("AWS_PROFILE", "keyrotor-sso")
                // The SSO portal, apart from the emulator every other call goes to.
                .env("AWS_ENDPOINT_URL_SSO", format!("http://127.0.0.1:{port}"))
                .args(["status", "--output", "json"])
                .output()
                .expect("keyrotor runs")
        };

        let signed_in = sso_home("sso-valid", TOKEN, chrono::Duration::hours(8));
        let out = run(&signed_in);
        assert_exit(&out, 0);
        assert_context(&json(&out), &["keyrotor-rotate"]);
        let requests = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(requests.len(), 1, "one GetRoleCredentials: {requests:?}");

        // Signed out (the token expired, nothing to refresh it with): one clear line, and
        // the portal is not asked.
        let expired = sso_home("sso-expired", TOKEN, -chrono::Duration::hours(1));
        let out = run(&expired);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let said = stderr(&out);
        assert!(
            said.contains("aws sso login --profile keyrotor-sso"),
            "{said}"
        );
        assert_eq!(
            said.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{said}"
        );
        assert_eq!(seen.lock().unwrap_or_else(|p| p.into_inner()).len(), 1);
        for home in [signed_in, expired] {
            let _ = std::fs::remove_dir_all(home);
        }
    });
}

#[test]
fn rotate_status_and_rerun_follow_a_rotation_through() {
    on_stack(|stack| async move {
        let old = user_with_aged_key(
            &stack.moto,
            &stack.account,
            "alice",
            &[("Email", "alice@example.com")],
            95,
        )
        .await
        .expect("seed");

        let mut outputs = Vec::new();
        let out = keyrotor(stack, &["rotate", "alice", "--wait"]);
        outputs.push(out.clone());
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("rotated to"), "{}", stdout(&out));
        assert!(
            stderr(&out).contains("waiting for deletion until"),
            "progress shows the wait: {}",
            stderr(&out)
        );
        let keys = stack.account.keys("alice").await.expect("keys");
        assert_eq!(keys.len(), 1);
        assert_ne!(keys[0].0, old.id);

        let out = keyrotor(stack, &["status", "--user", "alice", "--output", "json"]);
        outputs.push(out.clone());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rows = json(&out);
        assert_context(&rows, &["keyrotor-rotate"]);
        let rows = rows["executions"].as_array().expect("rows");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["status"], "SUCCEEDED");
        assert!(
            rows[0]["stage"]
                .as_str()
                .is_some_and(|s| s.contains("old key deleted")),
            "{rows:?}"
        );
        let arn = rows[0]["executionArn"].as_str().expect("arn").to_owned();

        let out = keyrotor(stack, &["status"]);
        outputs.push(out.clone());
        assert!(
            stdout(&out).contains("alice") && stdout(&out).contains(&arn),
            "{}",
            stdout(&out)
        );

        let out = keyrotor(stack, &["rerun", &arn, "--wait", "--output", "json"]);
        outputs.push(out.clone());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rerun = json(&out)["executions"].clone();
        assert!(
            rerun[0]["stage"]
                .as_str()
                .is_some_and(|s| s.starts_with("nothing to do")),
            "{rerun}"
        );
        assert_eq!(
            stack.account.keys("alice").await.expect("keys").len(),
            1,
            "a rerun changes nothing"
        );
        outputs.push(keyrotor(stack, &["report", "--format", "json"]));
        // Whatever the commands show, they never show the new secret.
        let stored = stack
            .account
            .secret_value(&stack.account.secret_of("alice").await.expect("id"))
            .await
            .expect("secret");
        let secret = stored["SecretAccessKey"].as_str().expect("value");
        for out in &outputs {
            assert!(
                !stdout(out).contains(secret) && !stderr(out).contains(secret),
                "secret in CLI output"
            );
        }
    });
}

#[test]
fn rotate_key_force_replaces_exactly_the_leaked_key() {
    on_stack(|stack| async move {
        // dave's key is young: only a forced rotation by key ID replaces it.
        let leaked = user_with_aged_key(
            &stack.moto,
            &stack.account,
            "dave",
            &[("Email", "dave@example.com")],
            3,
        )
        .await
        .expect("seed");
        let out = keyrotor(
            stack,
            &[
                "rotate",
                "--key",
                &leaked.id,
                "--force",
                "--reason",
                "pasted in a chat",
                "--wait",
                "--output",
                "json",
            ],
        );
        assert_exit(&out, 0);
        let done = json(&out);
        assert_context(&done, &["keyrotor-rotate"]);
        let done = &done["executions"];
        assert_eq!(done[0]["user"], "dave", "{done}");
        let keys = stack.account.keys("dave").await.expect("keys");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_ne!(keys[0].0, leaked.id);
        let mails = stack.moto.sent_emails().expect("mails");
        let why = mails
            .iter()
            .filter(|m| {
                m.body
                    .contains("a responder forced this rotation: pasted in a chat.")
            })
            .count();
        assert!(why >= 2, "owner and admin are told why: {mails:#?}");
        // `status --user` finds the rotation by key under its owner's name.
        let out = keyrotor(stack, &["status", "--user", "dave", "--output", "json"]);
        let rows = json(&out)["executions"].clone();
        assert!(
            rows.as_array()
                .is_some_and(|r| r.iter().any(|row| row["user"] == "dave"
                    && row["executionArn"]
                        .as_str()
                        .is_some_and(|a| a.contains(":adhoc-key-")))),
            "{rows}"
        );
    });
}

#[test]
fn scan_wait_follows_the_per_user_executions_it_starts() {
    on_stack(|stack| async move {
        let (m, a) = (&stack.moto, &stack.account);
        user_with_aged_key(m, a, "bob", &[("Email", "bob@example.com")], 80)
            .await
            .expect("seed");
        user_with_aged_key(m, a, "erin", &[], 10)
            .await
            .expect("seed");

        let out = keyrotor(stack, &["scan", "--dry-run", "--wait", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rows = json(&out)["executions"].clone();
        let bob = rows
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["user"] == "bob")
            .expect("bob followed")
            .clone();
        assert!(
            bob["stage"]
                .as_str()
                .is_some_and(|s| s.contains("dry run: would warn")),
            "{bob}"
        );
        assert!(
            stack.moto.sent_emails().expect("mails").is_empty(),
            "a dry run sends nothing"
        );

        let out = keyrotor(stack, &["scan", "--wait"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("warned (rotation on"),
            "{}",
            stdout(&out)
        );
        assert_eq!(stack.moto.sent_emails().expect("mails").len(), 1);
    });
}

#[test]
fn bad_arguments_and_unknown_things_are_one_clear_line() {
    on_stack(|stack| async move {
        stack.account.create_user("carol", &[]).await.expect("seed");
        let machine = stack.state_machine_arn.replace(":keyrotor", ":missing");
        let unknown_execution =
            keyrotor_core::naming::execution_arn(&stack.state_machine_arn, "nope");
        let cases: [(&[&str], i32, &str); 13] = [
            (&["rotate", "bad name!"], 1, "is not an IAM user name"),
            (&["rotate", "ghost"], 1, "unknown user ghost"),
            (&["rerun", "not-an-arn"], 1, "is not an execution ARN"),
            (&["rerun", &unknown_execution], 1, "unknown execution"),
            (
                &["status", "--state-machine", &machine],
                1,
                "unknown state machine",
            ),
            (&["status", "--since", "0"], 2, "--since"),
            (&["rotate"], 2, "USER"),
            (&["rotate", "--key", "AKIAIOSFODNN7EXAMPLE"], 2, "--force"),
            (&["rotate", "carol", "--reason", "leak"], 2, "--force"),
            (
                &[
                    "rotate",
                    "carol",
                    "--key",
                    "AKIAIOSFODNN7EXAMPLE",
                    "--force",
                ],
                2,
                "cannot be used with",
            ),
            (&["rotate", "--key", "akia-nope", "--force"], 1, "--key"),
            (
                &["rotate", "carol", "--force", "--reason", "two\nlines"],
                1,
                "--reason",
            ),
            (
                &["rotate", "--key", "AKIAIOSFODNN7EXAMPLE", "--force"],
                1,
                "unknown key AKIAIOSFODNN7EXAMPLE",
            ),
        ];
        for (args, code, needle) in cases {
            let out = keyrotor(stack, args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: {err}");
            if code == 1 {
                // The error, after the line that says where the command was acting (once
                // it got that far).
                let lines: Vec<&str> = err
                    .trim()
                    .lines()
                    .filter(|l| !l.starts_with("keyrotor: account "))
                    .collect();
                assert_eq!(lines.len(), 1, "one line: {err}");
                assert!(lines[0].starts_with("error: "), "{err}");
            }
        }
        // Discovery refuses to guess between two keyrotor-like state machines.
        stack
            .account
            .sfn
            .create_state_machine()
            .name("staging-keyrotor-rotate")
            .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
            .role_arn("arn:aws:iam::123456789012:role/x")
            .send()
            .await
            .expect("second machine");
        let out = keyrotor(stack, &["status"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("several state machines"),
            "{}",
            stderr(&out)
        );
        // Nothing was started by any of it.
        let executions = stack.executions().await.expect("list");
        assert!(executions.is_empty(), "{executions:?}");
    });
}
