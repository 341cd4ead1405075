//! A small IAM policy evaluator, enough to prove what keyrotor's KMS key policy and its
//! secrets' resource policies allow: the local emulator enforces neither.
//!
//! Supported, as AWS documents them:
//! - `Version` `2012-10-17`; `Statement` as one object or a list, with `Sid`, `Effect`
//!   (`Allow`/`Deny`), `Principal`, `Action` or `NotAction`, `Resource` and `Condition`;
//! - `Principal`: `"*"`, or `{"AWS": ..., "Service": ...}` with one value or a list. An AWS
//!   value is `"*"`, an account (`123456789012` or `arn:aws:iam::123456789012:root`), or a
//!   user or role ARN (a role ARN matches that role's sessions). A service principal never
//!   matches the users and role sessions requests here come from;
//! - actions with `*` and `?`, case-insensitive; resources with `*` and `?`;
//! - the condition operators `StringEquals`, `StringNotEquals`, `StringLike`,
//!   `StringNotLike`, `ArnEquals`, `ArnNotEquals`, `ArnLike` and `ArnNotLike`. Keys of an
//!   operator, and operators, are ANDed; the values of a key are ORed. A negated operator
//!   holds when the request's value matches none of the values. A key missing from the
//!   request makes a positive operator false and a negated one true. Key names are
//!   case-insensitive, values case-sensitive. `ArnEquals` and `ArnLike` alike match each of
//!   an ARN's six colon-separated parts on its own, with wildcards;
//! - multi-valued keys (such as `aws:TagKeys`, `aws:ResourceOrgPaths`) with the four string
//!   operators under `ForAllValues:` (every value of the request satisfies the operator;
//!   true when the request has none) or `ForAnyValue:` (at least one does; false when it has
//!   none), and `Null` (`"true"`: the request lacks the key), for single and multi-valued
//!   keys;
//! - policy variables (`${aws:userid}`, `${aws:username}`, any key of the request, and
//!   `${*}`, `${?}`, `${$}`) in condition values and resources; a substituted value is
//!   literal text, never a wildcard.
//!
//! Anything else (`NotPrincipal`, `NotResource`, other operators, `...IfExists`, a variable
//! the request lacks, a malformed element) is an error: the
//! evaluator never guesses, so it can never allow by accident.
//!
//! Two things about principals are modelled rather than matched naively:
//! - IAM stores a user or role ARN in a resource policy as that principal's unique ID. A user
//!   recreated with the same name is not matched, a renamed or moved one still is.
//!   [`Policy::bind`] records which unique ID an ARN stood for when the policy was written;
//!   an unbound ARN is compared as text.
//! - An account principal in an `Allow` delegates to the IAM policies of that account's
//!   principals, which this evaluator does not model: it grants nothing by itself, and
//!   evaluation reports [`Decision::DelegatedToIam`] when only such a statement would allow.
//!   In a `Deny`, an account principal matches every principal of the account.
//!
//! [`template`] reads policies out of the CloudFormation template.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The kind of principal a request comes from (`aws:PrincipalType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    User,
    AssumedRole,
}

/// Who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalType,
    /// The caller's ARN: the user's, or the session's (`arn:aws:sts::…:assumed-role/…`).
    pub arn: String,
    pub account: String,
    /// The unique ID of the user (`AIDA…`) or role (`AROA…`).
    pub unique_id: String,
    /// `aws:userid`: the user's unique ID, or `<role ID>:<session name>`.
    pub user_id: String,
    /// `aws:username`: users only.
    pub user_name: Option<String>,
    /// `aws:PrincipalArn`: the user's ARN, or the role's for a session.
    pub principal_arn: String,
}

impl Principal {
    /// The IAM user `name` at `path` (`/` or `/division/team/`) of `account`.
    pub fn user(account: &str, path: &str, name: &str, unique_id: &str) -> Self {
        let arn = format!("arn:aws:iam::{account}:user{path}{name}");
        Self {
            kind: PrincipalType::User,
            arn: arn.clone(),
            account: account.to_owned(),
            unique_id: unique_id.to_owned(),
            user_id: unique_id.to_owned(),
            user_name: Some(name.to_owned()),
            principal_arn: arn,
        }
    }

    /// A session named `session` of the role `name` at `path` of `account`.
    pub fn role_session(
        account: &str,
        path: &str,
        name: &str,
        unique_id: &str,
        session: &str,
    ) -> Self {
        Self {
            kind: PrincipalType::AssumedRole,
            arn: format!("arn:aws:sts::{account}:assumed-role/{name}/{session}"),
            account: account.to_owned(),
            unique_id: unique_id.to_owned(),
            user_id: format!("{unique_id}:{session}"),
            user_name: None,
            principal_arn: format!("arn:aws:iam::{account}:role{path}{name}"),
        }
    }
}

/// One request: a principal calling an action on a resource, with the request's context.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: String,
    pub resource: String,
    /// Context keys, lower-cased, including those that come from the principal.
    context: BTreeMap<String, String>,
    /// Multi-valued context keys, lower-cased (`aws:TagKeys`).
    lists: BTreeMap<String, Vec<String>>,
}

impl<'a> Request<'a> {
    /// A request with the context keys AWS derives from the principal: `aws:userid`,
    /// `aws:username` (users), `aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:PrincipalType`.
    pub fn new(principal: &'a Principal, action: &str, resource: &str) -> Self {
        let kind = match principal.kind {
            PrincipalType::User => "User",
            PrincipalType::AssumedRole => "AssumedRole",
        };
        let mut request = Self {
            principal,
            action: action.to_owned(),
            resource: resource.to_owned(),
            context: BTreeMap::new(),
            lists: BTreeMap::new(),
        }
        .with("aws:userid", &principal.user_id)
        .with("aws:PrincipalArn", &principal.principal_arn)
        .with("aws:PrincipalAccount", &principal.account)
        .with("aws:PrincipalType", kind);
        if let Some(name) = &principal.user_name {
            request = request.with("aws:username", name);
        }
        request
    }

    /// Adds (or replaces) a context key, such as `kms:ViaService`.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.context
            .insert(key.to_ascii_lowercase(), value.to_owned());
        self
    }

    /// Adds (or replaces) a multi-valued context key, such as `aws:TagKeys`.
    pub fn with_list(mut self, key: &str, values: &[&str]) -> Self {
        self.lists.insert(
            key.to_ascii_lowercase(),
            values.iter().map(|v| (*v).to_owned()).collect(),
        );
        self
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.context
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    fn list(&self, key: &str) -> Option<&[String]> {
        self.lists.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

/// What a policy says about a request, from weakest to strongest: the strongest that any
/// statement says is the policy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Decision {
    /// Nothing matches. For a KMS key policy that is a denial; for a Secrets Manager
    /// resource policy the principal's IAM policies may still allow a same-account request.
    ImplicitDeny,
    /// Only an `Allow` to the principal's account matches: the principal's IAM policies
    /// decide.
    DelegatedToIam,
    /// A matching `Allow` names the principal (or `*`).
    Allow,
    /// A matching `Deny`: nothing else can allow the request.
    ExplicitDeny,
}

/// A policy document, with the unique IDs its principal ARNs stood for when it was written.
#[derive(Debug, Clone)]
pub struct Policy {
    document: Value,
    bound: BTreeMap<String, String>,
}

impl Policy {
    pub fn new(document: Value) -> Self {
        Self {
            document,
            bound: BTreeMap::new(),
        }
    }

    /// An identity policy (a role's or a managed policy) as it applies to its holder: each
    /// statement's `Principal` is the holder (`*`, since only the holder is asked about).
    pub fn for_holder(mut document: Value) -> Self {
        if let Some(statements) = document["Statement"].as_array_mut() {
            for statement in statements {
                statement["Principal"] = Value::String("*".into());
            }
        }
        Self::new(document)
    }

    /// Records that the principal `arn` was the user or role `unique_id` when the policy
    /// was written: the ARN then matches that principal under any name, and nobody else.
    pub fn bind(mut self, arn: &str, unique_id: &str) -> Self {
        self.bound.insert(arn.to_owned(), unique_id.to_owned());
        self
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Evaluates every statement (so that an unsupported element anywhere is an error):
    /// an explicit deny wins, then an allow, then an allow delegated to IAM.
    pub fn evaluate(&self, request: &Request<'_>) -> Result<Decision> {
        match self.document.get("Version").and_then(Value::as_str) {
            Some("2012-10-17") => {}
            other => bail!("unsupported policy Version {other:?}"),
        }
        if let Some(key) = object(&self.document, "policy")?
            .keys()
            .find(|k| !matches!(k.as_str(), "Version" | "Id" | "Statement"))
        {
            bail!("unsupported policy element {key}");
        }
        let statements = match self.document.get("Statement") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            other => bail!("Statement must be an object or a list, not {other:?}"),
        };
        let mut decision = Decision::ImplicitDeny;
        for (index, statement) in statements.into_iter().enumerate() {
            let sid = statement.get("Sid").and_then(Value::as_str).unwrap_or("");
            let effect = self
                .statement(statement, request)
                .with_context(|| format!("statement {index} {sid}"))?;
            decision = decision.max(effect);
        }
        Ok(decision)
    }

    /// What one statement says: `ImplicitDeny` when it does not apply.
    fn statement(&self, statement: &Value, request: &Request<'_>) -> Result<Decision> {
        let fields = object(statement, "statement")?;
        if let Some(key) = fields.keys().find(|k| {
            !matches!(
                k.as_str(),
                "Sid" | "Effect" | "Principal" | "Action" | "NotAction" | "Resource" | "Condition"
            )
        }) {
            bail!("unsupported statement element {key}");
        }
        let deny = match statement.get("Effect").and_then(Value::as_str) {
            Some("Allow") => false,
            Some("Deny") => true,
            other => bail!("Effect must be Allow or Deny, not {other:?}"),
        };
        let principal = self.principal(statement.get("Principal"), request.principal)?;
        let action = match (statement.get("Action"), statement.get("NotAction")) {
            (Some(list), None) => any_action(list, &request.action)?,
            (None, Some(list)) => !any_action(list, &request.action)?,
            _ => bail!("a statement needs exactly one of Action and NotAction"),
        };
        let resource = strings(statement.get("Resource"), "Resource")?
            .into_iter()
            .map(|r| Ok(glob(&pattern(r, request, true)?, &request.resource, false)))
            .collect::<Result<Vec<bool>>>()?
            .contains(&true);
        let condition = match statement.get("Condition") {
            Some(block) => conditions(block, request)?,
            None => true,
        };
        Ok(match principal {
            _ if !(action && resource && condition) => Decision::ImplicitDeny,
            Match::None => Decision::ImplicitDeny,
            _ if deny => Decision::ExplicitDeny,
            Match::Direct => Decision::Allow,
            Match::Account => Decision::DelegatedToIam,
        })
    }

    /// Whether the `Principal` element names the caller, or only the caller's account.
    fn principal(&self, element: Option<&Value>, caller: &Principal) -> Result<Match> {
        let element = match element {
            Some(Value::String(s)) if s == "*" => return Ok(Match::Direct),
            Some(Value::Object(map)) => map,
            other => bail!("unsupported Principal {other:?}"),
        };
        let mut best = Match::None;
        for (kind, values) in element {
            let values = strings(Some(values), "Principal")?;
            match kind.as_str() {
                // Neither a user nor a role session is a service.
                "Service" => {}
                "AWS" => {
                    for value in values {
                        best = best.max(self.aws_principal(value, caller)?);
                    }
                }
                other => bail!("unsupported principal type {other}"),
            }
        }
        Ok(best)
    }

    fn aws_principal(&self, value: &str, caller: &Principal) -> Result<Match> {
        if value == "*" {
            return Ok(Match::Direct);
        }
        let account = if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Some(value)
        } else {
            value
                .strip_prefix("arn:aws:iam::")
                .and_then(|rest| rest.strip_suffix(":root"))
        };
        if let Some(account) = account {
            return Ok(if account == caller.account {
                Match::Account
            } else {
                Match::None
            });
        }
        if !value.starts_with("arn:aws:iam::") && !value.starts_with("arn:aws:sts::") {
            bail!("unsupported AWS principal {value}");
        }
        let named = match self.bound.get(value) {
            Some(id) => *id == caller.unique_id,
            None => value == caller.arn || value == caller.principal_arn,
        };
        Ok(if named { Match::Direct } else { Match::None })
    }
}

/// How a `Principal` element matches the caller; ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    None,
    Account,
    Direct,
}

fn object<'v>(value: &'v Value, what: &str) -> Result<&'v serde_json::Map<String, Value>> {
    value
        .as_object()
        .with_context(|| format!("a {what} must be an object, not {value}"))
}

/// One string or a non-empty list of strings.
fn strings<'v>(value: Option<&'v Value>, what: &str) -> Result<Vec<&'v str>> {
    let list: Vec<&Value> = match value {
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(one @ Value::String(_)) => vec![one],
        other => bail!("{what} must be a string or a non-empty list of strings, not {other:?}"),
    };
    list.into_iter()
        .map(|v| {
            v.as_str()
                .with_context(|| format!("{what} values must be strings, not {v}"))
        })
        .collect()
}

fn any_action(list: &Value, action: &str) -> Result<bool> {
    Ok(strings(Some(list), "Action")?
        .into_iter()
        .any(|a| glob(&wildcards(a), action, true)))
}

/// Whether every operator of a `Condition` block holds.
fn conditions(block: &Value, request: &Request<'_>) -> Result<bool> {
    let mut holds = true;
    for (operator, keys) in object(block, "Condition")? {
        if let Some((quantifier, base)) = operator.split_once(':') {
            let Some((negated, false, like)) = comparison(base) else {
                bail!("unsupported condition operator {quantifier}:{base}");
            };
            for (key, values) in object(keys, operator)? {
                let patterns = strings(Some(values), key)?
                    .into_iter()
                    .map(|v| pattern(v, request, like))
                    .collect::<Result<Vec<_>>>()?;
                let one =
                    |actual: &String| patterns.iter().any(|p| glob(p, actual, false)) != negated;
                let actual: Vec<String> = match (request.list(key), request.get(key)) {
                    (Some(list), _) => list.to_vec(),
                    (None, Some(single)) => vec![single.to_owned()],
                    (None, None) => Vec::new(),
                };
                holds &= match quantifier {
                    "ForAnyValue" => actual.iter().any(one),
                    "ForAllValues" => actual.iter().all(one),
                    other => bail!("unsupported condition quantifier {other}"),
                };
            }
            continue;
        }
        if operator == "Null" {
            for (key, values) in object(keys, operator)? {
                let absent = request.get(key).is_none() && request.list(key).is_none();
                let wanted = match strings(Some(values), key)?.as_slice() {
                    ["true"] => true,
                    ["false"] => false,
                    other => bail!("Null takes \"true\" or \"false\", not {other:?}"),
                };
                holds &= absent == wanted;
            }
            continue;
        }
        let Some((negated, arn, like)) = comparison(operator) else {
            bail!("unsupported condition operator {operator}");
        };
        for (key, values) in object(keys, operator)? {
            let mut matched = false;
            for value in strings(Some(values), key)? {
                let tokens = pattern(value, request, like)?;
                matched |= match request.get(key) {
                    Some(actual) if arn => arn_match(&tokens, actual),
                    Some(actual) => glob(&tokens, actual, false),
                    None => false,
                };
            }
            holds &= match request.get(key) {
                None => negated,
                Some(_) => matched != negated,
            };
        }
    }
    Ok(holds)
}

/// A comparison operator as (negated, compares ARNs, takes wildcards); `None` for any other.
/// The set operators `ForAnyValue:`/`ForAllValues:` take the string ones.
fn comparison(operator: &str) -> Option<(bool, bool, bool)> {
    Some(match operator {
        "StringEquals" => (false, false, false),
        "StringNotEquals" => (true, false, false),
        "StringLike" => (false, false, true),
        "StringNotLike" => (true, false, true),
        "ArnEquals" | "ArnLike" => (false, true, true),
        "ArnNotEquals" | "ArnNotLike" => (true, true, true),
        _ => return None,
    })
}

/// One element of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `*`: any run of characters.
    Any,
    /// `?`: any one character.
    One,
}

fn wildcards(text: &str) -> Vec<Token> {
    text.chars()
        .map(|c| match c {
            '*' => Token::Any,
            '?' => Token::One,
            c => Token::Char(c),
        })
        .collect()
}

/// A value with its policy variables substituted (as literal text) and, if `like`, its
/// wildcards.
fn pattern(value: &str, request: &Request<'_>, like: bool) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut rest = value;
    let literal = |s: &str| s.chars().map(Token::Char).collect::<Vec<_>>();
    while let Some(start) = rest.find("${") {
        let head = &rest[..start];
        tokens.extend(if like { wildcards(head) } else { literal(head) });
        let end = rest[start..]
            .find('}')
            .with_context(|| format!("unterminated policy variable in {value}"))?;
        let name = &rest[start + 2..start + end];
        let text = match name {
            "*" | "?" | "$" => name,
            _ if name.contains(',') => bail!("unsupported variable default in {value}"),
            _ => request
                .get(name)
                .with_context(|| format!("the request has no {name} for {value}"))?,
        };
        tokens.extend(literal(text));
        rest = &rest[start + end + 1..];
    }
    tokens.extend(if like { wildcards(rest) } else { literal(rest) });
    Ok(tokens)
}

/// Whether `text` matches `pattern` in full.
fn glob(pattern: &[Token], text: &str, ignore_case: bool) -> bool {
    let text: Vec<char> = text.chars().collect();
    let same = |a: char, b: char| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Backtracking over the last `*`: linear in practice, never exponential.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Token::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Token::One) => (p, t) = (p + 1, t + 1),
            Some(Token::Char(c)) if same(*c, text[t]) => (p, t) = (p + 1, t + 1),
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    (p, t) = (sp + 1, st + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|token| *token == Token::Any)
}

/// `ArnEquals`/`ArnLike`: each of the six colon-separated parts matched on its own, so a
/// wildcard never spans a colon before the resource part.
fn arn_match(pattern: &[Token], arn: &str) -> bool {
    let parts: Vec<&[Token]> = pattern
        .splitn(6, |token| *token == Token::Char(':'))
        .collect();
    let actual: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && actual.len() == 6
        && parts
            .iter()
            .zip(&actual)
            .all(|(part, actual)| glob(part, actual, false))
}

/// Policies read out of a CloudFormation template, with its intrinsic functions resolved
/// for one imagined stack.
pub mod template {
    use std::collections::BTreeMap;
    use std::path::Path;

    use anyhow::{bail, Context, Result};
    use serde_json::Value;
    use serde_norway::Value as Yaml;

    /// Where the imagined stack is deployed, and what `!GetAtt` gives there.
    #[derive(Debug, Clone)]
    pub struct Stack {
        pub partition: String,
        pub region: String,
        pub account_id: String,
        /// `Logical.Attribute` (e.g. `CreateKeyRole.Arn`) to its value, and a resource's
        /// logical ID (or `AWS::StackName`) to what `!Ref` gives.
        pub attributes: BTreeMap<String, String>,
        /// The template's conditions that `!If` asks about, as this stack has them.
        pub conditions: BTreeMap<String, bool>,
    }

    /// What `!Ref AWS::NoValue` resolves to until the list or mapping holding it drops it.
    const NO_VALUE: &str = "\u{0}AWS::NoValue";

    /// A parsed template.
    #[derive(Debug, Clone)]
    pub struct Template(Yaml);

    impl Template {
        pub fn load(path: &Path) -> Result<Self> {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
        }

        pub fn parse(text: &str) -> Result<Self> {
            Ok(Self(serde_norway::from_str(text)?))
        }

        /// The `Default` of a template parameter (a number as its text).
        pub fn parameter_default(&self, name: &str) -> Result<String> {
            let default = self
                .0
                .get("Parameters")
                .and_then(|p| p.get(name))
                .and_then(|p| p.get("Default"));
            match default {
                Some(Yaml::String(s)) => Ok(s.clone()),
                Some(Yaml::Number(n)) => Ok(n.to_string()),
                _ => bail!("parameter {name} has no string or number Default"),
            }
        }

        /// The logical IDs of the resources of `kind` (e.g. `AWS::CloudWatch::Alarm`).
        pub fn resources_of_type(&self, kind: &str) -> Vec<String> {
            let Some(Yaml::Mapping(resources)) = self.0.get("Resources") else {
                return Vec::new();
            };
            resources
                .iter()
                .filter(|(_, r)| r.get("Type").and_then(Yaml::as_str) == Some(kind))
                .filter_map(|(k, _)| k.as_str().map(str::to_owned))
                .collect()
        }

        /// The element at `path` (mapping keys from the top), as JSON with `!Sub` (both
        /// forms), `!Ref` (`AWS::NoValue` drops the element), `!GetAtt`, `!Select`,
        /// `!Split`, `!Join` and `!If` (by the stack's conditions) resolved. Any other tag is an
        /// error.
        pub fn resolve(&self, path: &[&str], stack: &Stack) -> Result<Value> {
            let mut node = &self.0;
            for key in path {
                node = node
                    .get(*key)
                    .with_context(|| format!("the template has no {}", path.join(".")))?;
            }
            self.json(node, stack)
                .with_context(|| format!("resolving {}", path.join(".")))
        }

        fn json(&self, node: &Yaml, stack: &Stack) -> Result<Value> {
            Ok(match node {
                Yaml::Null => Value::Null,
                Yaml::Bool(b) => Value::Bool(*b),
                Yaml::Number(n) => serde_json::to_value(n)?,
                Yaml::String(s) => Value::String(s.clone()),
                Yaml::Sequence(items) => Value::Array(
                    items
                        .iter()
                        .map(|item| self.json(item, stack))
                        .filter(|item| !matches!(item, Ok(Value::String(s)) if s == NO_VALUE))
                        .collect::<Result<_>>()?,
                ),
                Yaml::Mapping(map) => Value::Object(
                    map.iter()
                        .map(|(k, v)| {
                            let key = k.as_str().with_context(|| format!("key {k:?}"))?;
                            Ok((key.to_owned(), self.json(v, stack)?))
                        })
                        .filter(
                            |entry| !matches!(entry, Ok((_, Value::String(s))) if s == NO_VALUE),
                        )
                        .collect::<Result<_>>()?,
                ),
                Yaml::Tagged(tagged) => {
                    let tag = tagged.tag.to_string();
                    let arg = tagged.value.as_str();
                    match (tag.as_str(), arg) {
                        ("!Sub", Some(text)) => {
                            Value::String(self.sub(text, stack, &BTreeMap::new())?)
                        }
                        ("!Ref", Some("AWS::NoValue")) => Value::String(NO_VALUE.to_owned()),
                        ("!Ref", Some(name)) => Value::String(self.reference(name, stack)?),
                        ("!GetAtt", Some(name)) => Value::String(attribute(name, stack)?),
                        ("!If", None) => self.choose(&tagged.value, stack)?,
                        ("!Sub" | "!Select" | "!Split" | "!Join", None) => {
                            self.function(&tag, &tagged.value, stack)?
                        }
                        _ => bail!("unsupported {tag} {:?}", tagged.value),
                    }
                }
            })
        }

        /// `!If [condition, then, else]`: the branch the stack's condition picks, alone
        /// resolved (the other may refer to what this stack lacks).
        fn choose(&self, args: &Yaml, stack: &Stack) -> Result<Value> {
            let Some([Yaml::String(condition), then, otherwise]) =
                args.as_sequence().map(Vec::as_slice)
            else {
                bail!("!If takes [condition, then, else]");
            };
            match stack.conditions.get(condition) {
                Some(true) => self.json(then, stack),
                Some(false) => self.json(otherwise, stack),
                None => bail!("no value given for condition {condition}"),
            }
        }

        /// `!Sub [text, {Name: value}]`, `!Select [index, list]` and `!Split [separator,
        /// text]` (a list), their arguments resolved first.
        fn function(&self, tag: &str, args: &Yaml, stack: &Stack) -> Result<Value> {
            let args = self.json(args, stack)?;
            let args = args
                .as_array()
                .with_context(|| format!("{tag} takes a list"))?;
            match (tag, args.as_slice()) {
                ("!Sub", [Value::String(text), Value::Object(vars)]) => {
                    let vars = vars
                        .iter()
                        .map(|(k, v)| {
                            Ok((k.clone(), v.as_str().context("a !Sub variable")?.to_owned()))
                        })
                        .collect::<Result<BTreeMap<_, _>>>()?;
                    Ok(Value::String(self.sub(text, stack, &vars)?))
                }
                ("!Split", [Value::String(separator), Value::String(text)]) => Ok(Value::Array(
                    text.split(separator.as_str())
                        .map(|part| Value::String(part.to_owned()))
                        .collect(),
                )),
                ("!Join", [Value::String(separator), Value::Array(items)]) => {
                    let parts = items
                        .iter()
                        .map(|item| item.as_str().context("a !Join item"))
                        .collect::<Result<Vec<_>>>()?;
                    Ok(Value::String(parts.join(separator)))
                }
                ("!Select", [index, Value::Array(items)]) => {
                    let index = index
                        .as_u64()
                        .or_else(|| index.as_str().and_then(|i| i.parse().ok()))
                        .context("a !Select index")?;
                    items
                        .get(usize::try_from(index)?)
                        .cloned()
                        .with_context(|| format!("!Select {index} of {items:?}"))
                }
                _ => bail!("unsupported {tag} {args:?}"),
            }
        }

        /// `!Sub`: `${Name}` (from `vars` first) and `${Logical.Attribute}` substituted,
        /// `${!Literal}` kept as `${Literal}`.
        fn sub(
            &self,
            text: &str,
            stack: &Stack,
            vars: &BTreeMap<String, String>,
        ) -> Result<String> {
            let mut out = String::new();
            let mut rest = text;
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find('}')
                    .with_context(|| format!("unterminated ${{ in {text}"))?;
                let name = &rest[start + 2..start + end];
                match name.strip_prefix('!') {
                    Some(literal) => out.push_str(&format!("${{{literal}}}")),
                    None if vars.contains_key(name) => out.push_str(&vars[name]),
                    None if name.contains('.') => out.push_str(&attribute(name, stack)?),
                    None => out.push_str(&self.reference(name, stack)?),
                }
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            Ok(out)
        }

        /// `!Ref` of a pseudo parameter, of a resource or pseudo parameter the stack gives
        /// (in `attributes`, by bare name), or of a template parameter (its default).
        fn reference(&self, name: &str, stack: &Stack) -> Result<String> {
            match name {
                "AWS::Partition" => Ok(stack.partition.clone()),
                "AWS::Region" => Ok(stack.region.clone()),
                "AWS::AccountId" => Ok(stack.account_id.clone()),
                _ => match stack.attributes.get(name) {
                    Some(value) => Ok(value.clone()),
                    None => self.parameter_default(name),
                },
            }
        }
    }

    fn attribute(name: &str, stack: &Stack) -> Result<String> {
        stack
            .attributes
            .get(name)
            .cloned()
            .with_context(|| format!("no value given for !GetAtt {name}"))
    }
}
