//! Who may reach a member account, proved on the policy documents themselves: moto checks
//! neither trust policies nor `aws:ResourceOrgID`. The member roles' trust policies come
//! from `infra/member-account.yaml`, the hub roles' permission to assume them from
//! `infra/template.yaml`, both resolved for one imagined organization.

use std::collections::BTreeMap;

use keyrotor_tests::policy::template::{Stack, Template};
use keyrotor_tests::policy::{Decision, Policy, Principal, Request};
use serde_json::{json, Value};

const TOOLING: &str = "111111111111";
const MEMBER: &str = "222222222222";
/// An account of another organization (or of none).
const STRANGER: &str = "333333333333";
const ORG: &str = "o-abcdefghij";
const FUNCTIONS: [&str; 7] = [
    "list-users",
    "assess-key-age",
    "create-key",
    "deliver-key",
    "deactivate-key",
    "delete-key",
    "notify",
];

fn template(name: &str) -> Template {
    Template::load(
        &keyrotor_localstack::workspace_root()
            .join("infra")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

/// A template's logical ID for `function`'s resource of kind `suffix`:
/// `("create-key", "MemberRole")` is `CreateKeyMemberRole`.
fn logical(function: &str, suffix: &str) -> String {
    let name: String = function
        .split('-')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect();
    format!("{name}{suffix}")
}

/// The member stack's `OperatorRoleArn`: an IAM Identity Center permission set's roles.
const OPERATOR_ROLES: &str = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_KeyrotorOperator_*";

/// The trust policy of the member role of `function` (or `report`), with or without an
/// external ID.
fn trust(function: &str, external_id: Option<&str>) -> Policy {
    let logical = logical(function, "MemberRole");
    let stack = Stack {
        partition: "aws".into(),
        region: "eu-west-1".into(),
        account_id: MEMBER.into(),
        attributes: BTreeMap::from([
            ("ToolingAccountId".into(), TOOLING.into()),
            ("OrganizationId".into(), ORG.into()),
            ("ExternalId".into(), external_id.unwrap_or("").into()),
            ("OperatorRoleArn".into(), OPERATOR_ROLES.into()),
        ]),
        conditions: BTreeMap::from([
            ("HasExternalId".into(), external_id.is_some()),
            ("HasExemptGroup".into(), false),
        ]),
    };
    let document = template("member-account.yaml")
        .resolve(
            &[
                "Resources",
                &logical,
                "Properties",
                "AssumeRolePolicyDocument",
            ],
            &stack,
        )
        .unwrap_or_else(|e| panic!("{logical}: {e:#}"));
    // A trust policy is about its role: it names no Resource.
    let mut document = document;
    for statement in document["Statement"].as_array_mut().expect("statements") {
        assert!(statement.get("Resource").is_none(), "{statement}");
        statement["Resource"] = json!(member_role(MEMBER, function));
    }
    Policy::new(document)
}

/// A session of keyrotor's hub role of `function` in `account` (the tooling account, or an
/// impostor who made a role of the same path and name in another).
fn hub(account: &str, function: &str) -> Principal {
    Principal::role_session(
        account,
        "/keyrotor/hub/",
        &format!("keyrotor-{function}"),
        "AROAHUBROLE000000000",
        &format!("keyrotor-{function}"),
    )
}

fn member_role(account: &str, function: &str) -> String {
    format!("arn:aws:iam::{account}:role/keyrotor/{function}")
}

fn assume<'a>(
    caller: &'a Principal,
    role: &str,
    org: &str,
    external_id: Option<&str>,
) -> Request<'a> {
    let request = Request::new(caller, "sts:AssumeRole", role).with("aws:PrincipalOrgID", org);
    match external_id {
        Some(id) => request.with("sts:ExternalId", id),
        None => request,
    }
}

fn decide(policy: &Policy, request: &Request<'_>) -> Decision {
    policy
        .evaluate(request)
        .unwrap_or_else(|e| panic!("{}: {e:#}", policy.document()))
}

#[test]
fn only_the_functions_own_hub_role_in_the_organization_may_assume_its_member_role() {
    for function in FUNCTIONS {
        let policy = trust(function, None);
        let role = member_role(MEMBER, function);
        // The hub role: the trust delegates to the tooling account's IAM, whose policy for
        // that role allows exactly this (see the hub test below).
        let own = hub(TOOLING, function);
        assert_eq!(
            decide(&policy, &assume(&own, &role, ORG, None)),
            Decision::DelegatedToIam,
            "{function}"
        );
        // Another keyrotor function's role, another principal of the tooling account, a
        // role of the same name in another account, or the right role outside the
        // organization: nothing.
        let others = FUNCTIONS
            .iter()
            .filter(|f| **f != function)
            .map(|f| hub(TOOLING, f));
        for caller in others.chain([
            Principal::role_session(TOOLING, "/", "Admin", "AROAADMIN00000000000", "alice"),
            Principal::user(TOOLING, "/", "ci", "AIDACI00000000000000"),
            hub(STRANGER, function),
            hub(MEMBER, function),
        ]) {
            assert_eq!(
                decide(&policy, &assume(&caller, &role, ORG, None)),
                Decision::ImplicitDeny,
                "{function}: {}",
                caller.arn
            );
        }
        assert_eq!(
            decide(&policy, &assume(&own, &role, "o-otherorg00", None)),
            Decision::ImplicitDeny
        );
    }
}

#[test]
fn with_an_external_id_set_a_call_without_it_is_denied() {
    let policy = trust("create-key", Some("keyrotor-prod-7f3a"));
    let role = member_role(MEMBER, "create-key");
    let own = hub(TOOLING, "create-key");
    assert_eq!(
        decide(
            &policy,
            &assume(&own, &role, ORG, Some("keyrotor-prod-7f3a"))
        ),
        Decision::DelegatedToIam
    );
    assert_eq!(
        decide(&policy, &assume(&own, &role, ORG, None)),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(&policy, &assume(&own, &role, ORG, Some("guess"))),
        Decision::ExplicitDeny
    );
}

/// The hub role's identity policy: a statement of the role's own is about the role.
fn as_identity_policy(document: Value, role_arn: &str) -> Policy {
    let mut document = document;
    for statement in document["Statement"].as_array_mut().expect("statements") {
        statement["Principal"] = json!({ "AWS": role_arn });
    }
    Policy::new(document)
}

#[test]
fn a_hub_role_may_assume_only_its_own_member_role_and_only_in_the_organization() {
    let template = template("template.yaml");
    let stack = Stack {
        partition: "aws".into(),
        region: "eu-west-1".into(),
        account_id: TOOLING.into(),
        attributes: BTreeMap::from([("OrganizationId".into(), ORG.into())]),
        conditions: BTreeMap::from([("ManyAccounts".into(), true)]),
    };
    for function in FUNCTIONS {
        let logical = logical(function, "MemberAccess");
        let document = template
            .resolve(
                &["Resources", &logical, "Properties", "PolicyDocument"],
                &stack,
            )
            .unwrap_or_else(|e| panic!("{logical}: {e:#}"));
        let caller = hub(TOOLING, function);
        let policy = as_identity_policy(document, &caller.principal_arn);
        let ask = |role: &str, org: &str| {
            decide(
                &policy,
                &Request::new(&caller, "sts:AssumeRole", role).with("aws:ResourceOrgID", org),
            )
        };
        assert_eq!(
            ask(&member_role(MEMBER, function), ORG),
            Decision::Allow,
            "{function}"
        );
        for other in FUNCTIONS.iter().filter(|f| **f != function) {
            assert_eq!(
                ask(&member_role(MEMBER, other), ORG),
                Decision::ImplicitDeny,
                "{function} → {other}"
            );
        }
        for role in [
            format!("arn:aws:iam::{MEMBER}:role/OrganizationAccountAccessRole"),
            format!("arn:aws:iam::{MEMBER}:role/keyrotor/{function}-admin"),
            format!("arn:aws:iam::{MEMBER}:role/other/keyrotor/{function}"),
        ] {
            assert_eq!(
                ask(&role, ORG),
                Decision::ImplicitDeny,
                "{function} → {role}"
            );
        }
        // The same role name in an account outside the organization.
        assert_eq!(
            ask(&member_role(STRANGER, function), "o-otherorg00"),
            Decision::ImplicitDeny
        );
    }
}

/// M7 of the second review: the reader role trusted every principal of the tooling account
/// (PowerUserAccess may assume any role whose trust lets it), so anyone there read every
/// account's users, tags and keys' metadata. It now trusts only the operator role(s) the
/// member stack names.
#[test]
fn the_reader_role_is_for_the_tooling_accounts_operators_in_the_organization_only() {
    let policy = trust("report", None);
    let role = member_role(MEMBER, "report");
    // Delegated to the tooling account's IAM: the operator policy grants the assumption.
    let operator = Principal::role_session(
        TOOLING,
        "/aws-reserved/sso.amazonaws.com/eu-west-1/",
        "AWSReservedSSO_KeyrotorOperator_0123456789abcdef",
        "AROAOPERATOR00000000",
        "bob",
    );
    assert_eq!(
        decide(&policy, &assume(&operator, &role, ORG, None)),
        Decision::DelegatedToIam
    );
    for caller in [
        // The tooling account's other principals: a PowerUser, a CI role.
        Principal::role_session(
            TOOLING,
            "/aws-reserved/sso.amazonaws.com/eu-west-1/",
            "AWSReservedSSO_PowerUserAccess_0123456789abcdef",
            "AROAPOWERUSER0000000",
            "mallory",
        ),
        Principal::role_session(TOOLING, "/", "ci-deploy", "AROACIDEPLOY00000000", "ci"),
        Principal::role_session(STRANGER, "/", "Operator", "AROASTRANGER0000000", "eve"),
        Principal::role_session(MEMBER, "/", "Admin", "AROAMEMBERADMIN00000", "mallory"),
    ] {
        assert_eq!(
            decide(&policy, &assume(&caller, &role, ORG, None)),
            Decision::ImplicitDeny,
            "{}",
            caller.arn
        );
    }
    assert_eq!(
        decide(&policy, &assume(&operator, &role, "o-otherorg00", None)),
        Decision::ImplicitDeny
    );
}

/// M5 of the second review: the scope (ExcludeAccounts, ExcludeOus, IncludeOus) was only
/// list-accounts' filter, so an execution started by hand for an excluded account rotated
/// there. Now the hub roles may not assume a member role outside it, whatever starts them.
#[test]
fn no_hub_role_reaches_a_member_account_outside_the_scope() {
    const INCLUDED: &str = "ou-ab12-workload";
    const EXCLUDED: &str = "ou-ab12-sandbox1";
    const LEFT_OUT: &str = "444444444444";
    let template = template("template.yaml");
    let stack = |exclude_accounts: bool, exclude_ous: bool, include_ous: bool| Stack {
        partition: "aws".into(),
        region: "eu-west-1".into(),
        account_id: TOOLING.into(),
        attributes: BTreeMap::from([
            ("OrganizationId".into(), ORG.into()),
            ("ExcludeAccounts".into(), format!("{LEFT_OUT},555555555555")),
            ("ExcludeOus".into(), format!("ou-ab12-other000,{EXCLUDED}")),
            ("IncludeOus".into(), format!("{INCLUDED},ou-ab12-second00")),
        ]),
        conditions: BTreeMap::from([
            ("ManyAccounts".into(), true),
            ("ScopeLimited".into(), true),
            ("HasExcludeAccounts".into(), exclude_accounts),
            ("HasExcludeOus".into(), exclude_ous),
            ("HasIncludeOus".into(), include_ous),
        ]),
    };
    let resolve = |logical: &str, stack: &Stack| {
        template
            .resolve(
                &["Resources", logical, "Properties", "PolicyDocument"],
                stack,
            )
            .unwrap_or_else(|e| panic!("{logical}: {e:#}"))
    };
    // The guard holds each hub role that assumes a member role.
    let guarded = template
        .resolve(&["Resources", "HubScopeGuard", "Properties", "Roles"], &{
            let mut s = stack(true, true, true);
            for function in FUNCTIONS {
                s.attributes
                    .insert(logical(function, "Role"), function.into());
            }
            s
        })
        .expect("the guard names its roles");
    let mut guarded: Vec<String> =
        serde_json::from_value(guarded).expect("the guard's roles are a list");
    guarded.sort();
    let mut functions = FUNCTIONS.map(str::to_owned).to_vec();
    functions.sort();
    assert_eq!(guarded, functions, "every function with a member role");

    // (account, its organization path, in scope with all three limits set)
    let under = |ous: &str| format!("{ORG}/r-ab12/{ous}/");
    let accounts = [
        (MEMBER, under(INCLUDED), true),
        (MEMBER, under(&format!("{INCLUDED}/ou-ab12-deeper00")), true),
        ("666666666666", under("ou-ab12-second00"), true),
        (LEFT_OUT, under(INCLUDED), false),
        (
            "777777777777",
            under(&format!("{INCLUDED}/{EXCLUDED}")),
            false,
        ),
        ("777777777777", under(EXCLUDED), false),
        ("888888888888", under("ou-ab12-elsewhere"), false),
        ("888888888888", format!("{ORG}/r-ab12/"), false),
    ];
    for function in FUNCTIONS {
        let logical = logical(function, "MemberAccess");
        let caller = hub(TOOLING, function);
        let access = as_identity_policy(
            resolve(&logical, &stack(true, true, true)),
            &caller.principal_arn,
        );
        for limits in [
            (true, true, true),
            (true, false, false),
            (false, true, false),
            (false, false, true),
        ] {
            let guard = as_identity_policy(
                resolve("HubScopeGuard", &stack(limits.0, limits.1, limits.2)),
                &caller.principal_arn,
            );
            for (account, path, in_scope) in &accounts {
                let role = member_role(account, function);
                let request = Request::new(&caller, "sts:AssumeRole", &role)
                    .with("aws:ResourceOrgID", ORG)
                    .with("aws:ResourceAccount", account)
                    .with_list("aws:ResourceOrgPaths", &[path]);
                let denied = decide(&guard, &request) == Decision::ExplicitDeny;
                let allowed = decide(&access, &request) == Decision::Allow && !denied;
                // Under a single limit, only that limit's accounts are out.
                let out_by = |limit: bool, why: bool| limit && why;
                let expected = match limits {
                    (true, true, true) => *in_scope,
                    (a, o, i) => {
                        let left_out = *account == LEFT_OUT || *account == "555555555555";
                        let excluded = path.contains(EXCLUDED) || path.contains("ou-ab12-other000");
                        let outside =
                            !path.contains(INCLUDED) && !path.contains("ou-ab12-second00");
                        !(out_by(a, left_out) || out_by(o, excluded) || out_by(i, outside))
                    }
                };
                assert_eq!(
                    allowed, expected,
                    "{function} → {account} at {path}, limits {limits:?}"
                );
            }
            // No path at all (AWS gives none outside an organization): the include limit
            // refuses, the others leave it to the ResourceOrgID condition.
            let role = member_role(MEMBER, function);
            let request = Request::new(&caller, "sts:AssumeRole", &role)
                .with("aws:ResourceOrgID", ORG)
                .with("aws:ResourceAccount", MEMBER);
            assert_eq!(
                decide(&guard, &request) == Decision::ExplicitDeny,
                limits.2,
                "{function}, no path, limits {limits:?}"
            );
        }
    }
}
