//! Who can read and change a user's key, proven on the policy documents themselves: the KMS
//! key policy of `SecretsKey` as infra/template.yaml defines it, and the resource policy
//! keyrotor writes on each secret. The local emulator enforces neither.
//!
//! The two policies gate differently. A KMS key policy is the only way in: a request it does
//! not allow (nor delegate to IAM) is denied. A secret's resource policy is not: a principal
//! of the account whose IAM policies allow a request gets it unless the resource policy
//! denies it explicitly. So "nobody else reads or changes the secret" needs an explicit deny
//! there, and an implicit one is enough for KMS.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use keyrotor_core::naming::secret_name;
use keyrotor_core::ownership::{resource_policy, Expected, GUARDED_ACTIONS, POLICY_ACTIONS};
use keyrotor_tests::policy::template::{Stack, Template};
use keyrotor_tests::policy::{Decision, Policy, Principal, Request};
use serde_json::json;

const ACCOUNT: &str = "123456789012";
const OTHER_ACCOUNT: &str = "210987654321";
const REGION: &str = "us-east-1";
const VIA_SECRETS_MANAGER: &str = "secretsmanager.us-east-1.amazonaws.com";
const CREATE_KEY_ROLE: &str = "arn:aws:iam::123456789012:role/keyrotor-create-key";
const DELIVER_KEY_ROLE: &str = "arn:aws:iam::123456789012:role/keyrotor-deliver-key";
/// The stack's `KeyAdminRole`: the role that deploys it, at a path.
const KEY_ADMIN_ROLE: &str = "deploy/keyrotor-deployer";

/// Changes to a secret's policy: denied to everyone, keyrotor's roles included.
const POLICY_CHANGES: [&str; 2] = [
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
];

/// Every other change to a secret: denied to everyone but keyrotor's roles.
const CHANGES: [&str; 12] = [
    "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret",
    "secretsmanager:UpdateSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:TagResource",
    "secretsmanager:UntagResource",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
];

/// The template's `SecretsKey` policy and `SecretPrefix` default, for a stack in
/// 123456789012/us-east-1.
static TEMPLATE: LazyLock<(Policy, String)> = LazyLock::new(|| {
    let path = keyrotor_localstack::workspace_root().join("infra/template.yaml");
    let template = Template::load(&path).expect("infra/template.yaml parses");
    let stack = Stack {
        partition: "aws".into(),
        region: REGION.into(),
        account_id: ACCOUNT.into(),
        attributes: BTreeMap::from([
            ("CreateKeyRole.Arn".into(), CREATE_KEY_ROLE.into()),
            ("KeyAdminRole".into(), KEY_ADMIN_ROLE.into()),
        ]),
        conditions: Default::default(),
    };
    let document = template
        .resolve(
            &["Resources", "SecretsKey", "Properties", "KeyPolicy"],
            &stack,
        )
        .expect("SecretsKey's policy resolves");
    let prefix = template
        .parameter_default("SecretPrefix")
        .expect("SecretPrefix has a default");
    (Policy::new(document), prefix)
});

fn key_policy() -> &'static Policy {
    &TEMPLATE.0
}

fn secret_arn(user_id: &str) -> String {
    let name = secret_name(&TEMPLATE.1, user_id);
    format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbC123")
}

/// A user unique ID: `AIDA` and 17 upper-case letters and digits.
fn user_id(tail: &str) -> String {
    assert!(
        tail.len() == 17
            && tail
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{tail}"
    );
    format!("AIDA{tail}")
}

fn user(path: &str, name: &str, id_tail: &str) -> Principal {
    Principal::user(ACCOUNT, path, name, &user_id(id_tail))
}

fn role(name: &str, id: &str) -> Principal {
    Principal::role_session(ACCOUNT, "/", name, id, "session")
}

/// Owners whose names use every character IAM allows, at the longest, with paths.
fn owners() -> Vec<Principal> {
    let long = format!("Long.Name-{}", "x".repeat(54));
    assert_eq!(long.len(), 64);
    vec![
        user("/", "alice", "JQABLZS4A3QDU576Q"),
        user(
            "/division/team/",
            "Bob.Smith+ops=eu,x@example.com_-9",
            "Z8Y7X6W5V4U3T2S1R",
        ),
        user("/", &long, "00000000000000001"),
        user(
            "/division/team/",
            "UPPER=lower+0123456789",
            "ABCDEFGHIJKLMNOPQ",
        ),
    ]
}

fn mallory() -> Principal {
    user("/", "mallory", "MALL0RY0000000000")
}

fn admin() -> Principal {
    role("Admin", "AROAADMIN00000000001")
}

fn create_key() -> Principal {
    Principal::role_session(
        ACCOUNT,
        "/",
        "keyrotor-create-key",
        "AROACREATEKEY0000001",
        "create-key",
    )
}

/// keyrotor's roles, and a break-glass role at a path, as trusted by the resource policy.
fn trusted() -> Vec<Principal> {
    vec![
        create_key(),
        role("keyrotor-deactivate-key", "AROADEACTIVATE000001"),
        Principal::role_session(ACCOUNT, "/ops/", "BreakGlass", "AROABREAKGLASS000001", "me"),
    ]
}

/// The resource policy keyrotor writes on `owner`'s secret, with the owner's ARN bound to
/// their unique ID as IAM stores it.
fn secret_policy(owner: &Principal) -> Policy {
    let roles: Vec<String> = trusted().into_iter().map(|r| r.principal_arn).collect();
    let expected = Expected {
        user_id: &owner.user_id,
        user_arn: &owner.arn,
        kms_key_id: Some("arn:aws:kms:us-east-1:123456789012:key/1111"),
        trusted_role_arns: &roles,
    };
    Policy::new(resource_policy(&secret_arn(&owner.user_id), &expected))
        .bind(&owner.arn, &owner.unique_id)
}

/// What `caller` gets when Secrets Manager decrypts `secret_arn`'s value for them.
fn decrypt(caller: &Principal, secret_arn: &str) -> Decision {
    let request = Request::new(caller, "kms:Decrypt", "*")
        .with("kms:ViaService", VIA_SECRETS_MANAGER)
        .with("kms:CallerAccount", &caller.account)
        .with("kms:EncryptionContext:SecretARN", secret_arn);
    key_policy()
        .evaluate(&request)
        .expect("key policy evaluates")
}

fn on_secret(policy: &Policy, caller: &Principal, action: &str, owner: &Principal) -> Decision {
    let request = Request::new(caller, action, &secret_arn(&owner.user_id));
    policy
        .evaluate(&request)
        .expect("resource policy evaluates")
}

fn read(caller: &Principal, owner: &Principal) -> Decision {
    on_secret(
        &secret_policy(owner),
        caller,
        "secretsmanager:GetSecretValue",
        owner,
    )
}

/// Asserts that `caller` can neither get `owner`'s secret value nor decrypt it.
fn assert_cannot_read(caller: &Principal, owner: &Principal) {
    let who = format!("{} on {}'s secret", caller.arn, owner.arn);
    assert_eq!(read(caller, owner), Decision::ExplicitDeny, "{who}");
    assert_eq!(
        decrypt(caller, &secret_arn(&owner.user_id)),
        Decision::ImplicitDeny,
        "{who}"
    );
}

/// `OperatorPolicy` as a stack without an exemption group and in one account resolves it.
fn operator_policy() -> Policy {
    let path = keyrotor_localstack::workspace_root().join("infra/template.yaml");
    let template = Template::load(&path).expect("infra/template.yaml parses");
    let machine =
        |name: &str| format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:prod-{name}");
    let mut attributes = BTreeMap::from([
        ("AWS::StackName".to_owned(), "prod".to_owned()),
        ("ScanStateMachine".into(), machine("keyrotor-scan")),
        ("RotateUserStateMachine".into(), machine("keyrotor-rotate")),
        ("ResponderStateMachine".into(), machine("keyrotor-respond")),
        ("ExemptGroup".into(), String::new()),
        ("SecretPrefix".into(), TEMPLATE.1.clone()),
    ]);
    for function in template.resources_of_type("AWS::Serverless::Function") {
        attributes.insert(
            format!("{function}.Arn"),
            format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:prod-{function}"),
        );
    }
    let stack = Stack {
        partition: "aws".into(),
        region: REGION.into(),
        account_id: ACCOUNT.into(),
        attributes,
        conditions: BTreeMap::from([
            ("HasExemptGroup".into(), false),
            ("ManyAccounts".into(), false),
        ]),
    };
    let document = template
        .resolve(
            &[
                "Resources",
                "OperatorPolicy",
                "Properties",
                "PolicyDocument",
            ],
            &stack,
        )
        .expect("OperatorPolicy resolves");
    Policy::for_holder(document)
}

/// What moto gives back, and what AWS may: keyrotor's policy with every object's keys in
/// another order (sorted, as Python's `json.dumps(sort_keys=True)` writes them). Where the
/// AWS SDK's `aws-smithy-http-client` is in the build, it turns on serde_json's
/// `preserve_order` (in `cargo build --workspace`, so in the CLI and in make test's test
/// binaries): a canonical form that sorted by text in the keys' own order then judged
/// keyrotor's own secrets not keyrotor's (the CLI did so, for a whole window, on moto).
#[test]
fn keyrotors_policy_read_back_with_its_keys_in_another_order_is_still_keyrotors() {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    let owner = owners().remove(0);
    let user_id = owner.unique_id.clone();
    let arn = secret_arn(&user_id);
    let roles = vec![CREATE_KEY_ROLE.to_owned()];
    let expected = Expected {
        user_id: &user_id,
        user_arn: &owner.principal_arn,
        kms_key_id: Some("alias/keyrotor"),
        trusted_role_arns: &roles,
    };
    let written = resource_policy(&arn, &expected);
    let read_back = sorted(&written).to_string();
    assert_ne!(
        read_back,
        written.to_string(),
        "serde_json keeps the keys' order here"
    );
    let secret = keyrotor_core::ports::SecretDescription {
        arn: arn.clone(),
        name: secret_name(&TEMPLATE.1, &user_id),
        tags: BTreeMap::from([(
            keyrotor_core::naming::TAG_USER_ID.to_owned(),
            user_id.clone(),
        )]),
        state: Default::default(),
        kms_key_id: Some("alias/keyrotor".into()),
        replicated: false,
        rotation_enabled: false,
        scheduled_for_deletion: false,
        version_count: 1,
    };
    assert_eq!(
        keyrotor_core::ownership::judge(&secret, Some(&read_back), &expected),
        keyrotor_core::ownership::Trust::Protected
    );
}

/// M8 of the second review: an operator who could stop a leak response's execution during
/// create-key's verification left the leaked key active, with no mail and no alarm; one who
/// could redrive a failed one finished a forced rotation. Operators follow the responder's
/// executions, and stop and redrive only the scan's and the per-user machine's.
#[test]
fn operators_follow_leak_responses_but_may_not_stop_or_redrive_them() {
    let policy = operator_policy();
    let operator = role("SecurityOperator", "AROAOPERATOR00000001");
    let execution = |machine: &str| {
        format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:prod-{machine}:exposed-AKIA-1")
    };
    let decide = |action: &str, machine: &str| {
        policy
            .evaluate(&Request::new(&operator, action, &execution(machine)))
            .expect("evaluates")
    };
    for action in ["states:StopExecution", "states:RedriveExecution"] {
        assert_eq!(
            decide(action, "keyrotor-respond"),
            Decision::ImplicitDeny,
            "{action}"
        );
        for machine in ["keyrotor-rotate", "keyrotor-scan"] {
            assert_eq!(
                decide(action, machine),
                Decision::Allow,
                "{action} on {machine}"
            );
        }
    }
    for action in ["states:DescribeExecution", "states:GetExecutionHistory"] {
        assert_eq!(
            decide(action, "keyrotor-respond"),
            Decision::Allow,
            "{action}"
        );
    }
}

#[test]
fn operators_may_set_the_windows_two_tags_on_a_user_and_no_other_tag() {
    let policy = operator_policy();
    let operator = role("SecurityOperator", "AROAOPERATOR00000001");
    let alice = format!("arn:aws:iam::{ACCOUNT}:user/alice");
    let tag = |keys: &[&str]| {
        policy
            .evaluate(
                &Request::new(&operator, "iam:TagUser", &alice).with_list("aws:TagKeys", keys),
            )
            .expect("evaluates")
    };
    assert_eq!(tag(&["keyrotor:cutover"]), Decision::Allow);
    assert_eq!(tag(&["keyrotor:extend"]), Decision::Allow);
    for refused in [
        &["key-rotation:exempt"][..],
        &["Email"],
        &["keyrotor:cutover", "key-rotation:exempt"],
        &["keyrotor:user-id"],
    ] {
        assert_eq!(tag(refused), Decision::ImplicitDeny, "{refused:?}");
    }
    // No tag keys in the request at all, untagging, and other IAM writes: nothing.
    let bare = Request::new(&operator, "iam:TagUser", &alice);
    assert_eq!(
        policy.evaluate(&bare).expect("evaluates"),
        Decision::ImplicitDeny
    );
    for action in [
        "iam:UntagUser",
        "iam:UpdateAccessKey",
        "iam:DeleteAccessKey",
        "iam:CreateAccessKey",
    ] {
        let request =
            Request::new(&operator, action, &alice).with_list("aws:TagKeys", &["keyrotor:cutover"]);
        assert_eq!(
            policy.evaluate(&request).expect("evaluates"),
            Decision::ImplicitDeny,
            "{action}"
        );
    }
}

#[test]
fn the_key_policy_is_read_from_the_template() {
    assert_eq!(TEMPLATE.1, "iam-access-key/");
    let statements = key_policy().document()["Statement"]
        .as_array()
        .expect("statements");
    let decrypt = statements
        .iter()
        .find(|s| s["Sid"] == "UsersDecryptOnlyTheirOwnSecret")
        .expect("the users' decrypt statement");
    assert_eq!(
        decrypt["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"],
        json!("arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-access-key/${aws:userid}-??????")
    );
}

#[test]
fn the_owner_reads_their_own_key() {
    for owner in owners() {
        assert_eq!(read(&owner, &owner), Decision::Allow, "{}", owner.arn);
        assert_eq!(
            decrypt(&owner, &secret_arn(&owner.user_id)),
            Decision::Allow,
            "{}",
            owner.arn
        );
    }
}

#[test]
fn no_other_user_of_the_account_reads_the_key() {
    let mut everyone = owners();
    everyone.push(mallory());
    for owner in owners() {
        for other in everyone.iter().filter(|u| u.unique_id != owner.unique_id) {
            assert_cannot_read(other, &owner);
        }
    }
}

#[test]
fn a_user_recreated_with_the_same_name_and_path_does_not_read_the_old_key() {
    for owner in owners() {
        let path_and_name = owner.arn.split(":user").nth(1).expect("user ARN");
        let (path, name) = path_and_name.rsplit_once('/').expect("path");
        let recreated = user(&format!("{path}/"), name, "RECREATED00000000");
        assert_eq!(recreated.arn, owner.arn);
        assert_cannot_read(&recreated, &owner);
    }
}

#[test]
fn a_renamed_or_moved_user_still_reads_their_key() {
    for owner in owners() {
        for (path, name) in [("/", "renamed"), ("/elsewhere/", "moved+renamed")] {
            let moved = Principal::user(ACCOUNT, path, name, &owner.unique_id);
            assert_eq!(read(&moved, &owner), Decision::Allow, "{}", moved.arn);
            assert_eq!(
                decrypt(&moved, &secret_arn(&owner.user_id)),
                Decision::Allow,
                "{}",
                moved.arn
            );
        }
    }
}

#[test]
fn no_role_session_reads_the_key_not_even_keyrotors() {
    let mut sessions = trusted();
    sessions.push(admin());
    for owner in owners() {
        for session in &sessions {
            if session.arn.contains("/keyrotor-create-key/") {
                // Secrets Manager asks the writer of a value for kms:Decrypt as well, so
                // create-key holds it through Secrets Manager; the secret's own Deny on
                // GetSecretValue is what keeps the value from it.
                assert_eq!(read(session, &owner), Decision::ExplicitDeny);
                assert_eq!(
                    decrypt(session, &secret_arn(&owner.user_id)),
                    Decision::Allow
                );
            } else {
                assert_cannot_read(session, &owner);
            }
        }
    }
}

#[test]
fn a_principal_of_another_account_does_not_read_the_key() {
    for owner in owners() {
        let path_and_name = owner.arn.split(":user").nth(1).expect("user ARN");
        let (path, name) = path_and_name.rsplit_once('/').expect("path");
        let foreign_user = Principal::user(
            OTHER_ACCOUNT,
            &format!("{path}/"),
            name,
            &user_id("F0REIGN0000000000"),
        );
        let foreign_role =
            Principal::role_session(OTHER_ACCOUNT, "/", "Admin", "AROAFOREIGN000000001", "x");
        for foreign in [foreign_user, foreign_role] {
            assert_cannot_read(&foreign, &owner);
        }
    }
}

#[test]
fn a_user_id_that_is_a_prefix_of_another_does_not_reach_its_secret() {
    let short = user("/", "short", "ABCDEFGHIJKLMNOPQ");
    let lookalikes = [
        // One character more or less than the owner's, and the owner's in lower case.
        Principal::user(ACCOUNT, "/", "longer", "AIDAABCDEFGHIJKLMNOPQR"),
        Principal::user(ACCOUNT, "/", "shorter", "AIDAABCDEFGHIJKLMNOP"),
        Principal::user(ACCOUNT, "/", "lower", "aidaabcdefghijklmnopq"),
        // The owner's ID followed by what looks like the secret's random suffix.
        Principal::user(ACCOUNT, "/", "suffixed", "AIDAABCDEFGHIJKLMNOPQAbC123"),
    ];
    for other in &lookalikes {
        assert_cannot_read(other, &short);
        assert_cannot_read(&short, other);
    }
    // What the six `?` prevent: with `*` instead, the shorter ID decrypts the owner's key.
    let loose = key_policy()
        .document()
        .to_string()
        .replace("${aws:userid}-??????", "${aws:userid}*");
    let loose = Policy::new(serde_json::from_str(&loose).expect("json"));
    let request = Request::new(&lookalikes[1], "kms:Decrypt", "*")
        .with("kms:ViaService", VIA_SECRETS_MANAGER)
        .with("kms:CallerAccount", ACCOUNT)
        .with(
            "kms:EncryptionContext:SecretARN",
            &secret_arn(&short.user_id),
        );
    assert_eq!(
        loose.evaluate(&request).expect("evaluates"),
        Decision::Allow
    );
}

#[test]
fn only_create_key_encrypts_and_only_through_secrets_manager() {
    let secret = secret_arn(&owners()[0].user_id);
    let encrypt = |caller: &Principal, action: &str, via: Option<&str>| {
        let mut request = Request::new(caller, action, "*")
            .with("kms:CallerAccount", &caller.account)
            .with("kms:EncryptionContext:SecretARN", &secret);
        if let Some(via) = via {
            request = request.with("kms:ViaService", via);
        }
        key_policy()
            .evaluate(&request)
            .expect("key policy evaluates")
    };
    for action in ["kms:Encrypt", "kms:GenerateDataKey", "KMS:generatedatakey"] {
        let via = Some(VIA_SECRETS_MANAGER);
        assert_eq!(encrypt(&create_key(), action, via), Decision::Allow);
        assert_eq!(encrypt(&create_key(), action, None), Decision::ImplicitDeny);
        assert_eq!(
            encrypt(&create_key(), action, Some("s3.us-east-1.amazonaws.com")),
            Decision::ImplicitDeny
        );
        let mut others = owners();
        others.extend([mallory(), admin(), trusted()[1].clone()]);
        for other in &others {
            assert_eq!(
                encrypt(other, action, via),
                Decision::ImplicitDeny,
                "{}",
                other.arn
            );
        }
    }
}

/// What changes a KMS key: its policy, alias, state, tags, deletion.
const KEY_ADMINISTRATION: [&str; 14] = [
    "kms:PutKeyPolicy",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:RevokeGrant",
    "kms:UpdateKeyDescription",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
];

/// The key administrator, as the stack names it, and principals of the account that are
/// not: its administrators and PowerUsers included (the second review's M1 and M4: they
/// could rewrite the key policy, or move the member alias to a key of their own, and so
/// plant values keyrotor would trust).
fn key_admins_and_others() -> (Principal, Vec<Principal>) {
    let deployer = Principal::role_session(
        ACCOUNT,
        "/deploy/",
        "keyrotor-deployer",
        "AROADEPLOYER00000001",
        "sam",
    );
    let others = vec![
        admin(),
        role("PowerUser", "AROAPOWERUSER0000001"),
        role("keyrotor-deployer-2", "AROADEPLOYER00000002"),
        Principal::role_session(
            ACCOUNT,
            "/",
            "keyrotor-deployer",
            "AROADEPLOYER00000003",
            "s",
        ),
        create_key(),
        mallory(),
    ];
    (deployer, others)
}

/// Every KMS key both templates create, its policy resolved for this account.
fn every_key_policy() -> Vec<(String, Policy)> {
    let stack = Stack {
        partition: "aws".into(),
        region: REGION.into(),
        account_id: ACCOUNT.into(),
        attributes: BTreeMap::from([
            ("CreateKeyRole.Arn".into(), CREATE_KEY_ROLE.into()),
            ("CreateKeyMemberRole.Arn".into(), CREATE_KEY_ROLE.into()),
            ("DeliverKeyRole.Arn".into(), DELIVER_KEY_ROLE.into()),
            ("KeyAdminRole".into(), KEY_ADMIN_ROLE.into()),
            ("AWS::StackName".into(), "keyrotor".into()),
        ]),
        conditions: Default::default(),
    };
    let mut policies = Vec::new();
    for file in ["template.yaml", "member-account.yaml"] {
        let path = keyrotor_localstack::workspace_root()
            .join("infra")
            .join(file);
        let template = Template::load(&path).expect("the template parses");
        for key in template.resources_of_type("AWS::KMS::Key") {
            let document = template
                .resolve(&["Resources", &key, "Properties", "KeyPolicy"], &stack)
                .unwrap_or_else(|e| panic!("{file} {key}: {e:#}"));
            policies.push((format!("{file} {key}"), Policy::new(document)));
        }
    }
    assert_eq!(
        policies.len(),
        5,
        "four keys in the stack, one per member account"
    );
    policies
}

fn deliver_key() -> Principal {
    Principal::role_session(
        ACCOUNT,
        "/",
        "keyrotor-deliver-key",
        "AROADELIVERKEY000001",
        "deliver-key",
    )
}

/// The handoff of a new key (issue 29): create-key alone seals with the delivery key and
/// deliver-key alone opens, each only with the user and key ID as encryption context; no
/// user, administrator, PowerUser, other keyrotor role or other account does either.
#[test]
fn only_create_key_seals_and_only_deliver_key_opens_a_handoff() {
    let (_, policy) = every_key_policy()
        .into_iter()
        .find(|(name, _)| name == "template.yaml DeliveryKey")
        .expect("the delivery key");
    let context = ["keyrotor:user", "keyrotor:accessKeyId"];
    let decide = |caller: &Principal, action: &str, keys: Option<&[&str]>| {
        let mut request = Request::new(caller, action, "*");
        if let Some(keys) = keys {
            request = request.with_list("kms:EncryptionContextKeys", keys);
        }
        policy.evaluate(&request).expect("key policy evaluates")
    };
    assert_eq!(
        decide(&create_key(), "kms:Encrypt", Some(&context)),
        Decision::Allow
    );
    assert_eq!(
        decide(&deliver_key(), "kms:Decrypt", Some(&context)),
        Decision::Allow
    );
    for (caller, action) in [
        (create_key(), "kms:Encrypt"),
        (deliver_key(), "kms:Decrypt"),
    ] {
        // Without the context, or with more than it (another use of the key).
        assert_eq!(
            decide(&caller, action, None),
            Decision::ImplicitDeny,
            "{action}"
        );
        let more = ["keyrotor:user", "keyrotor:accessKeyId", "aws:purpose"];
        assert_eq!(decide(&caller, action, Some(&more)), Decision::ImplicitDeny);
    }
    assert_eq!(
        decide(&create_key(), "kms:Decrypt", Some(&context)),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&deliver_key(), "kms:Encrypt", Some(&context)),
        Decision::ImplicitDeny
    );
    let (deployer, mut others) = key_admins_and_others();
    others.extend(owners());
    others.extend(trusted());
    others.push(deployer);
    others.push(Principal::role_session(
        OTHER_ACCOUNT,
        "/",
        "keyrotor-deliver-key",
        "AROAOTHERACCOUNT0001",
        "deliver-key",
    ));
    for other in others.iter().filter(|o| o.principal_arn != CREATE_KEY_ROLE) {
        for action in [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:GenerateDataKey",
            "kms:ReEncryptFrom",
        ] {
            assert_eq!(
                decide(other, action, Some(&context)),
                Decision::ImplicitDeny,
                "{action} by {}",
                other.principal_arn
            );
        }
    }
}

#[test]
fn only_the_key_admin_administers_keyrotors_keys() {
    let (deployer, others) = key_admins_and_others();
    for (key, policy) in every_key_policy() {
        let decide = |caller: &Principal, action: &str| {
            let request = Request::new(caller, action, "*");
            policy.evaluate(&request).expect("key policy evaluates")
        };
        for action in KEY_ADMINISTRATION {
            // Left to the deployer's IAM policies: the key policy lets only it.
            assert_eq!(
                decide(&deployer, action),
                Decision::DelegatedToIam,
                "{key}: {action}"
            );
            for other in &others {
                assert_eq!(
                    decide(other, action),
                    Decision::ImplicitDeny,
                    "{key}: {action} by {}",
                    other.principal_arn
                );
            }
        }
        // Reading the key's settings stays with the account's IAM policies.
        for caller in others.iter().chain([&deployer]) {
            for action in [
                "kms:DescribeKey",
                "kms:GetKeyPolicy",
                "kms:ListResourceTags",
            ] {
                assert_eq!(
                    decide(caller, action),
                    Decision::DelegatedToIam,
                    "{key}: {action}"
                );
            }
        }
    }
}

#[test]
fn the_key_admin_uses_the_secrets_key_for_nothing() {
    let (deployer, others) = key_admins_and_others();
    let secret = secret_arn(&owners()[0].user_id);
    for caller in others
        .iter()
        .filter(|p| p.user_name.is_none())
        .chain([&deployer])
    {
        if caller.principal_arn == CREATE_KEY_ROLE {
            continue;
        }
        let decide = |action: &str| {
            let request = Request::new(caller, action, "*")
                .with("kms:ViaService", VIA_SECRETS_MANAGER)
                .with("kms:CallerAccount", ACCOUNT)
                .with("kms:EncryptionContext:SecretARN", &secret);
            key_policy()
                .evaluate(&request)
                .expect("key policy evaluates")
        };
        for action in [
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
            "kms:CreateGrant",
        ] {
            assert_eq!(
                decide(action),
                Decision::ImplicitDeny,
                "{action} by {}",
                caller.principal_arn
            );
        }
    }
}

#[test]
fn the_owner_decrypts_only_through_secrets_manager() {
    let owner = &owners()[0];
    let direct = Request::new(owner, "kms:Decrypt", "*")
        .with("kms:CallerAccount", ACCOUNT)
        .with(
            "kms:EncryptionContext:SecretARN",
            &secret_arn(&owner.user_id),
        );
    assert_eq!(
        key_policy().evaluate(&direct).expect("evaluates"),
        Decision::ImplicitDeny
    );
}

/// H1 of the second review: a role that may rewrite a secret's policy may grant itself
/// GetSecretValue, and create-key decrypts through Secrets Manager (it must, to write a
/// value). So no principal, none of keyrotor's roles and not the break-glass role either,
/// may change or remove the policy keyrotor wrote; and under it none of them reads.
#[test]
fn no_role_of_keyrotor_can_rewrite_a_secrets_policy_and_then_read_the_key() {
    assert_eq!(
        POLICY_ACTIONS.into_iter().collect::<Vec<_>>(),
        POLICY_CHANGES.to_vec()
    );
    let mut everyone = trusted();
    everyone.extend([admin(), mallory()]);
    for owner in owners() {
        let policy = secret_policy(&owner);
        let mut callers = everyone.clone();
        callers.push(owner.clone());
        for caller in &callers {
            for action in POLICY_CHANGES
                .into_iter()
                .chain(["SecretsManager:putresourcepolicy"])
            {
                assert_eq!(
                    on_secret(&policy, caller, action, &owner),
                    Decision::ExplicitDeny,
                    "{action} by {} on {}'s secret",
                    caller.arn,
                    owner.arn
                );
            }
        }
        // The policy stays, so the step after a rewrite finds it still in force.
        for role in trusted() {
            assert_eq!(read(&role, &owner), Decision::ExplicitDeny, "{}", role.arn);
        }
    }
}

#[test]
fn every_change_to_the_secret_is_denied_to_all_but_keyrotors_roles() {
    assert_eq!(
        GUARDED_ACTIONS
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        CHANGES.into_iter().collect(),
    );
    for owner in owners() {
        let policy = secret_policy(&owner);
        let mut denied = owners();
        denied.extend([mallory(), admin()]);
        for action in CHANGES.into_iter().chain(["SecretsManager:putsecretvalue"]) {
            for caller in &denied {
                assert_eq!(
                    on_secret(&policy, caller, action, &owner),
                    Decision::ExplicitDeny,
                    "{action} by {}",
                    caller.arn
                );
            }
            // Not denied: left to the roles' own IAM policies.
            for role in trusted() {
                assert_eq!(
                    on_secret(&policy, &role, action, &owner),
                    Decision::ImplicitDeny,
                    "{action} by {}",
                    role.arn
                );
            }
        }
    }
}

/// The evaluator on small policies of its own.
mod evaluator {
    use keyrotor_tests::policy::template::{Stack, Template};
    use keyrotor_tests::policy::{Decision, Policy, Principal, Request};
    use serde_json::{json, Value};

    fn alice() -> Principal {
        Principal::user("123456789012", "/", "alice", "AIDAALICE")
    }

    fn policy(statements: Value) -> Policy {
        Policy::new(json!({ "Version": "2012-10-17", "Statement": statements }))
    }

    fn allow(action: &str, resource: &str, condition: Value) -> Value {
        json!({ "Effect": "Allow", "Principal": "*", "Action": action,
                "Resource": resource, "Condition": condition })
    }

    fn decide(policy: &Policy, request: &Request<'_>) -> Decision {
        policy.evaluate(request).expect("evaluates")
    }

    #[test]
    fn deny_beats_allow() {
        let mut deny = allow("s3:*", "*", json!({}));
        deny["Effect"] = json!("Deny");
        let p = policy(json!([allow("s3:GetObject", "*", json!({})), deny]));
        let alice = alice();
        assert_eq!(
            decide(&p, &Request::new(&alice, "s3:GetObject", "arn:x")),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn negated_operators_hold_when_the_key_is_missing_and_positive_ones_do_not() {
        let alice = alice();
        let request = Request::new(&alice, "s3:GetObject", "arn:x");
        for (operator, allowed) in [
            ("StringEquals", false),
            ("StringLike", false),
            ("ArnLike", false),
            ("StringNotEquals", true),
            ("StringNotLike", true),
            ("ArnNotEquals", true),
        ] {
            let p = policy(allow(
                "s3:*",
                "*",
                json!({ operator: { "k:missing": "x" } }),
            ));
            let expected = if allowed {
                Decision::Allow
            } else {
                Decision::ImplicitDeny
            };
            assert_eq!(decide(&p, &request), expected, "{operator}");
        }
        // A negated operator with a present key: true only if no value matches.
        let p = policy(allow(
            "s3:*",
            "*",
            json!({ "StringNotEquals": { "aws:username": ["bob", "alice"] } }),
        ));
        assert_eq!(decide(&p, &request), Decision::ImplicitDeny);
    }

    #[test]
    fn wildcards_and_variables_match_as_aws_does() {
        let alice = alice();
        let p = policy(allow(
            "s3:Get*",
            "arn:aws:s3:::bucket/${aws:username}/?.txt",
            json!({ "ArnLike": { "aws:PrincipalArn": "arn:aws:iam::*:user/*" } }),
        ));
        let at = |action: &str, resource: &str| decide(&p, &Request::new(&alice, action, resource));
        assert_eq!(
            at("S3:GETOBJECT", "arn:aws:s3:::bucket/alice/a.txt"),
            Decision::Allow
        );
        assert_eq!(
            at("s3:PutObject", "arn:aws:s3:::bucket/alice/a.txt"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            at("s3:GetObject", "arn:aws:s3:::bucket/alice/ab.txt"),
            Decision::ImplicitDeny
        );
        assert_eq!(
            at("s3:GetObject", "arn:aws:s3:::bucket/bob/a.txt"),
            Decision::ImplicitDeny
        );
        // ArnLike matches part by part: a `*` does not swallow the account's colon.
        let p = policy(allow(
            "s3:*",
            "*",
            json!({ "ArnLike": { "aws:PrincipalArn": "arn:aws:iam:*" } }),
        ));
        assert_eq!(
            decide(&p, &Request::new(&alice, "s3:X", "r")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn principals_name_users_roles_and_accounts() {
        let alice = alice();
        let request = Request::new(&alice, "s3:GetObject", "r");
        let named = |principal: Value| {
            let mut statement = allow("s3:*", "*", json!({}));
            statement["Principal"] = principal;
            policy(statement)
        };
        let user = json!({ "AWS": alice.arn });
        assert_eq!(decide(&named(user.clone()), &request), Decision::Allow);
        let bound_elsewhere = named(user).bind(&alice.arn, "AIDAOLDALICE");
        assert_eq!(decide(&bound_elsewhere, &request), Decision::ImplicitDeny);
        let root = json!({ "AWS": "arn:aws:iam::123456789012:root" });
        assert_eq!(decide(&named(root), &request), Decision::DelegatedToIam);
        let service = json!({ "Service": "logs.amazonaws.com" });
        assert_eq!(decide(&named(service), &request), Decision::ImplicitDeny);
        let session = Principal::role_session("123456789012", "/x/", "R", "AROAR", "s");
        let role = json!({ "AWS": "arn:aws:iam::123456789012:role/x/R" });
        assert_eq!(
            decide(&named(role), &Request::new(&session, "s3:A", "r")),
            Decision::Allow
        );
    }

    #[test]
    fn unsupported_elements_fail_instead_of_allowing() {
        let alice = alice();
        let request = Request::new(&alice, "s3:GetObject", "r");
        let mut not_principal = allow("s3:*", "*", json!({}));
        not_principal["NotPrincipal"] = json!({ "AWS": "x" });
        for p in [
            policy(not_principal),
            policy(allow(
                "s3:*",
                "*",
                json!({ "StringEqualsIfExists": { "a:b": "c" } }),
            )),
            policy(allow(
                "s3:*",
                "*",
                json!({ "ForAnyValue:NumericLessThan": { "a:b": "1" } }),
            )),
            policy(allow(
                "s3:*",
                "*",
                json!({ "Bool": { "aws:SecureTransport": "true" } }),
            )),
            policy(allow(
                "s3:*",
                "*",
                json!({ "StringLike": { "a:b": "${aws:SourceIp}" } }),
            )),
            policy(allow("s3:*", "*", json!({ "StringLike": { "a:b": [] } }))),
            Policy::new(json!({ "Statement": allow("s3:*", "*", json!({})) })),
        ] {
            assert!(p.evaluate(&request).is_err(), "{}", p.document());
        }
        let stack = Stack {
            partition: "aws".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            attributes: Default::default(),
            conditions: Default::default(),
        };
        let template =
            Template::parse("A: !FindInMap [M, a, b]\nB: !GetAtt Missing.Arn\n").expect("parses");
        assert!(template.resolve(&["A"], &stack).is_err());
        assert!(template.resolve(&["B"], &stack).is_err());
        // The forms the template's SES statement uses resolve to what CloudFormation gives.
        let template = Template::parse(
            "C: !Select [1, !Split ['@', 'keyrotor@example.com']]\n\
             D: !Sub ['arn:${AWS::Partition}:x/${Domain}', {Domain: !Select [1, !Split ['@', 'a@b.example']]}]\n\
             E: !Split [',', 'a,b']\n\
             F: !Select [2, !Split [',', 'a,b']]\n\
             G: !Split [',', !Sub ['*/${Ous}/*', {Ous: !Join ['/*,*/', !Split [',', 'ou-1,ou-2']]}]]\n",
        )
        .expect("parses");
        assert_eq!(
            template.resolve(&["C"], &stack).expect("C"),
            json!("example.com")
        );
        assert_eq!(
            template.resolve(&["D"], &stack).expect("D"),
            json!("arn:aws:x/b.example")
        );
        assert_eq!(
            template.resolve(&["E"], &stack).expect("E"),
            json!(["a", "b"])
        );
        assert!(template.resolve(&["F"], &stack).is_err(), "out of range");
        // The scope guard's OU patterns, as CloudFormation builds them from a list.
        assert_eq!(
            template.resolve(&["G"], &stack).expect("G"),
            json!(["*/ou-1/*", "*/ou-2/*"])
        );
    }

    #[test]
    fn set_operators_quantify_over_every_value_of_a_multi_valued_key() {
        let alice = alice();
        let paths = |values: &[&str]| {
            Request::new(&alice, "s3:GetObject", "r").with_list("aws:ResourceOrgPaths", values)
        };
        let any = policy(allow(
            "s3:*",
            "*",
            json!({ "ForAnyValue:StringLike": { "aws:ResourceOrgPaths": ["*/ou-x/*", "*/ou-y/*"] } }),
        ));
        let all_not = policy(allow(
            "s3:*",
            "*",
            json!({ "ForAllValues:StringNotLike": { "aws:ResourceOrgPaths": ["*/ou-x/*", "*/ou-y/*"] } }),
        ));
        let decide = |p: &Policy, r: &Request<'_>| p.evaluate(r).expect("evaluates");
        for (values, in_any) in [
            (&["o-1/r-1/ou-x/"][..], true),
            (&["o-1/r-1/ou-z/ou-y/ou-w/"][..], true),
            (&["o-1/r-1/ou-z/", "o-1/r-1/ou-x/"][..], true),
            (&["o-1/r-1/ou-z/"][..], false),
            (&["o-1/r-1/ou-xx/"][..], false),
            (&[][..], false),
        ] {
            let request = paths(values);
            assert_eq!(
                decide(&any, &request) == Decision::Allow,
                in_any,
                "ForAnyValue {values:?}"
            );
            // Every value outside all patterns: also true for none at all.
            let outside = values
                .iter()
                .all(|v| !v.contains("/ou-x/") && !v.contains("/ou-y/"));
            assert_eq!(
                decide(&all_not, &request) == Decision::Allow,
                outside,
                "ForAllValues {values:?}"
            );
        }
        // A key the request lacks: no value satisfies ForAnyValue, all (none) ForAllValues.
        let bare = Request::new(&alice, "s3:GetObject", "r");
        assert_eq!(decide(&any, &bare), Decision::ImplicitDeny);
        assert_eq!(decide(&all_not, &bare), Decision::Allow);
    }
}

/// M1 of the second review: a principal of the tooling account with ordinary rights
/// (PowerUserAccess has lambda:*, states:*, events:*, kms:*) could change keyrotor's code,
/// configuration, definitions, rules and keys, or invoke its functions directly, and so
/// defeat every guarantee above without touching IAM. `infra/tooling-guard-scp.json` is the
/// service control policy to attach to the tooling account (with the stack's name and the
/// deployment role filled in): only the deployment changes them, and only keyrotor's own
/// roles invoke its functions.
#[test]
fn the_tooling_accounts_guard_leaves_keyrotor_to_its_deployment_and_its_own_roles() {
    let path = keyrotor_localstack::workspace_root().join("infra/tooling-guard-scp.json");
    let text = std::fs::read_to_string(&path)
        .expect("the guard")
        .replace("${StackName}", "prod")
        .replace(
            "${DeploymentRoleArn}",
            "arn:aws:iam::123456789012:role/keyrotor-deployment",
        )
        .replace(
            "${ResponderRoleArn}",
            "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_SecurityResponder_*",
        );
    let guard = Policy::for_holder(serde_json::from_str(&text).expect("JSON"));
    let decide = |caller: &Principal, action: &str, resource: &str, tagged: bool| {
        let mut request = Request::new(caller, action, resource);
        if tagged {
            request = request.with("aws:ResourceTag/aws:cloudformation:stack-name", "prod");
        }
        guard.evaluate(&request).expect("evaluates")
    };
    let function = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:prod-create-key");
    let machine = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:prod-keyrotor-rotate");
    let rule = format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/prod-keyrotor-exposed-key-health");
    let key = format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/1111");
    let signing =
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-0123456789abcdef0");
    let changes: [(&str, &str, bool); 12] = [
        ("lambda:UpdateFunctionCode", &function, false),
        ("lambda:DeleteFunctionCodeSigningConfig", &function, false),
        ("lambda:UpdateCodeSigningConfig", &signing, true),
        ("lambda:DeleteCodeSigningConfig", &signing, true),
        ("lambda:UpdateFunctionConfiguration", &function, false),
        ("lambda:InvokeFunction", &function, false),
        ("lambda:AddPermission", &function, false),
        ("states:UpdateStateMachine", &machine, false),
        ("events:PutTargets", &rule, false),
        ("events:DisableRule", &rule, false),
        ("kms:PutKeyPolicy", &key, true),
        ("kms:ScheduleKeyDeletion", &key, true),
    ];
    let power_user = Principal::role_session(
        ACCOUNT,
        "/aws-reserved/sso.amazonaws.com/",
        "AWSReservedSSO_PowerUserAccess_0123456789abcdef",
        "AROAPOWERUSER0000000",
        "mallory",
    );
    let deployment = role("keyrotor-deployment", "AROADEPLOYMENT000001");
    for (action, resource, tagged) in changes {
        for caller in [&power_user, &admin()] {
            assert_eq!(
                decide(caller, action, resource, tagged),
                Decision::ExplicitDeny,
                "{action} by {}",
                caller.arn
            );
        }
        assert_ne!(
            decide(&deployment, action, resource, tagged),
            Decision::ExplicitDeny,
            "{action} by the deployment"
        );
    }
    // keyrotor's state machines invoke its functions; other stacks' functions and keys
    // are none of the guard's business.
    let machine_role = role(
        "prod-RotateUserStateMachineRole-AbC123",
        "AROAMACHINE000000001",
    );
    assert_ne!(
        decide(&machine_role, "lambda:InvokeFunction", &function, false),
        Decision::ExplicitDeny
    );
    // M9: only responders (and respond-to-exposure's role) start the responder machine,
    // whose executions are forced; the per-user machine stays the operators'.
    let responder_machine =
        format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:prod-keyrotor-respond");
    let responder = Principal::role_session(
        ACCOUNT,
        "/aws-reserved/sso.amazonaws.com/",
        "AWSReservedSSO_SecurityResponder_0123456789abcdef",
        "AROARESPONDER0000001",
        "rita",
    );
    let respond_role = role("prod-RespondToExposureRole-XyZ789", "AROARESPOND000000001");
    for caller in [&power_user, &admin()] {
        assert_eq!(
            decide(caller, "states:StartExecution", &responder_machine, false),
            Decision::ExplicitDeny,
            "{}",
            caller.arn
        );
    }
    for caller in [&responder, &respond_role] {
        assert_ne!(
            decide(caller, "states:StartExecution", &responder_machine, false),
            Decision::ExplicitDeny,
            "{}",
            caller.arn
        );
    }
    assert_ne!(
        decide(&power_user, "states:StartExecution", &machine, false),
        Decision::ExplicitDeny,
        "the per-user machine is the operators'"
    );
    let other = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:billing-export");
    assert_ne!(
        decide(&power_user, "lambda:UpdateFunctionCode", &other, false),
        Decision::ExplicitDeny
    );
    assert_ne!(
        decide(&power_user, "kms:PutKeyPolicy", &key, false),
        Decision::ExplicitDeny,
        "a key not of keyrotor's stack"
    );
}

/// deliver-key's role as the template grants it (moto enforces the actions only): SSM
/// writes under `DeliveryParameterPath` alone, the delivery key by its alias alone, and the
/// two settings secrets named by ARN, nothing else of Secrets Manager.
#[test]
fn deliver_keys_role_reaches_its_path_its_key_and_its_two_settings_secrets_only() {
    let path = keyrotor_localstack::workspace_root().join("infra/template.yaml");
    let template = Template::load(&path).expect("infra/template.yaml parses");
    let token = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/github-AbCdEf";
    let hook = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/webhook-AbCdEf";
    let stack = Stack {
        partition: "aws".into(),
        region: REGION.into(),
        account_id: ACCOUNT.into(),
        attributes: BTreeMap::from([
            ("AWS::StackName".into(), "prod".into()),
            (
                "DeliverKeyLogs.Arn".into(),
                "arn:aws:logs:us-east-1:123456789012:log-group:x".into(),
            ),
            ("DeliveryParameterPath".into(), "/keyrotor/".into()),
            ("ParameterKmsKeyArn".into(), String::new()),
            ("GitHubTokenSecretArn".into(), token.into()),
            ("WebhookKeySecretArn".into(), hook.into()),
        ]),
        conditions: BTreeMap::from([
            ("ManyAccounts".into(), false),
            ("HasParameterKmsKey".into(), false),
            ("HasGitHubToken".into(), true),
            ("HasWebhookKey".into(), true),
            ("HasDeliverySecrets".into(), true),
        ]),
    };
    let document = template
        .resolve(
            &["Resources", "DeliverKeyRole", "Properties", "Policies"],
            &stack,
        )
        .expect("DeliverKeyRole's policies resolve");
    let policy = Policy::for_holder(document[0]["PolicyDocument"].clone());
    let role = deliver_key();
    let decide = |action: &str, resource: &str, aliases: &[&str]| {
        let request =
            Request::new(&role, action, resource).with_list("kms:ResourceAliases", aliases);
        policy
            .evaluate(&request)
            .expect("the role's policy evaluates")
    };
    let parameter = |name: &str| format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}");
    assert_eq!(
        decide("ssm:PutParameter", &parameter("/keyrotor/ci/aws"), &[]),
        Decision::Allow
    );
    for outside in ["/app/database-password", "/keyrotorx/ci", "/aws/service/x"] {
        assert_eq!(
            decide("ssm:PutParameter", &parameter(outside), &[]),
            Decision::ImplicitDeny,
            "{outside}"
        );
    }
    let key = format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-0000-4000-8000-000000000000");
    let own_alias = "alias/prod-keyrotor-delivery";
    assert_eq!(decide("kms:Decrypt", &key, &[own_alias]), Decision::Allow);
    for aliases in [
        &["alias/prod-keyrotor-secrets"][..],
        &[],
        &["alias/other-keyrotor-delivery"],
    ] {
        assert_eq!(
            decide("kms:Decrypt", &key, aliases),
            Decision::ImplicitDeny,
            "{aliases:?}"
        );
    }
    for secret in [token, hook] {
        assert_eq!(
            decide("secretsmanager:GetSecretValue", secret, &[]),
            Decision::Allow
        );
    }
    let users = secret_arn(&owners()[0].user_id);
    for other in [
        users.as_str(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrotor/github-XyZ123",
    ] {
        assert_eq!(
            decide("secretsmanager:GetSecretValue", other, &[]),
            Decision::ImplicitDeny,
            "{other}"
        );
    }
    for (action, resource) in [
        ("kms:Encrypt", key.as_str()),
        (
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/alice",
        ),
        ("ssm:GetParameter", parameter("/keyrotor/ci/aws").as_str()),
    ] {
        assert_eq!(
            decide(action, resource, &[own_alias]),
            Decision::ImplicitDeny,
            "{action}"
        );
    }
}
