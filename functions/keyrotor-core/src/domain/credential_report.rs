//! The IAM credential report: one CSV for the whole account, giving for each user whether
//! each of their (at most two) access keys is active and when it was last rotated, i.e.
//! created. The scan reads it once per page instead of calling ListAccessKeys per user, and
//! looks closer (live) only at users whose keys may need action.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::{LastUse, Policy};

/// One key as the report shows it (no key ID: the report has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportKey {
    pub active: bool,
    pub created: DateTime<Utc>,
    /// Its last use (`None`: not given, so unknown).
    pub last_used: Option<LastUse>,
}

/// The report's rows by user name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialReport {
    pub users: HashMap<String, Vec<ReportKey>>,
}

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credential report: {0}")]
pub struct ReportError(pub String);

const KEY_COLUMNS: [(&str, &str, &str); 2] = [
    (
        "access_key_1_active",
        "access_key_1_last_rotated",
        "access_key_1_last_used_date",
    ),
    (
        "access_key_2_active",
        "access_key_2_last_rotated",
        "access_key_2_last_used_date",
    ),
];

impl CredentialReport {
    /// Parses the report's CSV. Rows that do not line up with the header (a user name with
    /// a comma, for instance) are left out: such users are simply checked live.
    pub fn parse(csv: &str) -> Result<Self, ReportError> {
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .ok_or_else(|| ReportError("empty".into()))?
            .split(',')
            .collect();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .ok_or_else(|| ReportError(format!("no column {name}")))
        };
        let user_col = column("user")?;
        let key_cols = KEY_COLUMNS
            .iter()
            .map(|(active, rotated, used)| {
                Ok((
                    column(active)?,
                    column(rotated)?,
                    header.iter().position(|h| h == used),
                ))
            })
            .collect::<Result<Vec<_>, ReportError>>()?;
        let mut users = HashMap::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
            if fields.len() != header.len() {
                continue;
            }
            let user = fields[user_col];
            if user == "<root_account>" {
                continue;
            }
            let mut keys = Vec::new();
            for (active, rotated, used) in &key_cols {
                if let Ok(created) = DateTime::parse_from_rfc3339(fields[*rotated]) {
                    keys.push(ReportKey {
                        active: fields[*active].eq_ignore_ascii_case("true"),
                        created: created.with_timezone(&Utc),
                        last_used: used.and_then(|c| last_used(fields[c])),
                    });
                }
            }
            users.insert(user.to_owned(), keys);
        }
        Ok(CredentialReport { users })
    }
}

/// A last-used column: `N/A` is never (IAM's word for a key that signed nothing), a time
/// is that time, anything else is unknown.
fn last_used(field: &str) -> Option<LastUse> {
    if field == "N/A" {
        return Some(LastUse::Never);
    }
    DateTime::parse_from_rfc3339(field)
        .ok()
        .map(|t| LastUse::At(t.with_timezone(&Utc)))
}

impl From<&super::AccessKey> for ReportKey {
    fn from(key: &super::AccessKey) -> Self {
        ReportKey {
            active: key.is_active(),
            created: key.created,
            last_used: None,
        }
    }
}

/// Whether a user with these keys may need action today. Only key status and age go in,
/// which both the credential report and ListAccessKeys give, so a scan looks no closer
/// (tags, group, secret) at anyone for whom this is false. It is false only where the
/// planner decides nothing whatever the tags, group and secret (a property test in the
/// planner's tests holds it to that): no key due for rotation or on a warning day, no
/// inactive key (a rotation or a retirement to finish), no pair of active keys that may be
/// a rotation under way, and no more keys than IAM allows.
pub fn keys_may_need_action(keys: &[ReportKey], policy: &Policy, now: DateTime<Utc>) -> bool {
    let active: Vec<&ReportKey> = keys.iter().filter(|k| k.active).collect();
    let due_or_warned = active.iter().any(|k| {
        let age = (now - k.created).num_days();
        age >= i64::from(policy.rotate_after_days)
            || policy.warn_days.iter().any(|d| i64::from(*d) == age)
    });
    // A rotation may be under way while its window lasts, and a day more for its resume.
    let recent_pair = active.len() == 2
        && active
            .iter()
            .any(|k| now - k.created < super::cutover::LONGEST_WINDOW + Duration::days(1));
    let inactive = keys.iter().any(|k| !k.active);
    keys.len() > 2 || due_or_warned || recent_pair || inactive
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    fn row(user: &str, k1: Option<(bool, &str)>, k2: Option<(bool, &str)>) -> String {
        let key = |k: Option<(bool, &str)>| match k {
            Some((active, at)) => format!("{active},{at},N/A,N/A,N/A"),
            None => "false,N/A,N/A,N/A,N/A".into(),
        };
        format!(
            "{user},arn:aws:iam::123456789012:user/{user},2024-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,{},{},false,N/A,false,N/A",
            key(k1),
            key(k2)
        )
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
            .single()
            .expect("date")
    }

    fn policy() -> Policy {
        crate::domain::test_policy()
    }

    fn days_ago(d: i64) -> String {
        (now() - Duration::days(d)).to_rfc3339()
    }

    #[test]
    fn rows_give_each_users_keys_and_skip_the_root_account() {
        let csv = [
            HEADER.to_owned(),
            row("<root_account>", None, None),
            row("alice", Some((true, &days_ago(95))), None),
            row(
                "bob",
                Some((true, &days_ago(3))),
                Some((false, &days_ago(200))),
            ),
            row("keyless", None, None),
        ]
        .join("\n");
        let report = CredentialReport::parse(&csv).expect("parses");
        assert_eq!(report.users.len(), 3);
        assert_eq!(report.users["alice"].len(), 1);
        assert!(report.users["alice"][0].active);
        assert_eq!(report.users["bob"].len(), 2);
        assert!(report.users["keyless"].is_empty());
        assert_eq!(
            report.users["alice"][0].last_used,
            Some(LastUse::Never),
            "N/A is never used"
        );
    }

    #[test]
    fn a_keys_last_use_is_read_from_its_column() {
        let used = days_ago(50);
        let csv = format!(
            "{HEADER}\n{}\n{}",
            row("alice", Some((true, &days_ago(95))), None).replacen(
                &format!("{},N/A", days_ago(95)),
                &format!("{},{used}", days_ago(95)),
                1
            ),
            row("bob", Some((true, &days_ago(95))), None).replacen(
                &format!("{},N/A", days_ago(95)),
                &format!("{},no_information", days_ago(95)),
                1
            ),
        );
        let report = CredentialReport::parse(&csv).expect("parses");
        assert_eq!(
            report.users["alice"][0].last_used,
            Some(LastUse::At(now() - Duration::days(50)))
        );
        assert_eq!(report.users["bob"][0].last_used, None, "unknown");
    }

    #[test]
    fn only_users_whose_keys_may_need_action_are_looked_at() {
        let csv = [
            HEADER.to_owned(),
            row("due", Some((true, &days_ago(95))), None),
            row("warned", Some((true, &days_ago(80))), None),
            row("fresh", Some((true, &days_ago(10))), None),
            row("between-warnings", Some((true, &days_ago(82))), None),
            row("keyless", None, None),
            row(
                "old-leftover",
                Some((true, &days_ago(40))),
                Some((false, &days_ago(300))),
            ),
            row(
                "rotating",
                Some((true, &days_ago(2))),
                Some((false, &days_ago(120))),
            ),
            row("retired", Some((false, &days_ago(95))), None),
            row(
                "resuming",
                Some((true, &days_ago(60))),
                Some((true, &days_ago(0))),
            ),
        ]
        .join("\n");
        let report = CredentialReport::parse(&csv).expect("parses");
        let look = |u: &str| keys_may_need_action(&report.users[u], &policy(), now());
        assert!(look("due") && look("warned") && look("rotating") && look("resuming"));
        assert!(
            look("old-leftover"),
            "an inactive key beside an active one may be a rotation to finish"
        );
        assert!(
            look("retired"),
            "an inactive key alone may be a retirement to finish"
        );
        assert!(!look("fresh") && !look("keyless") && !look("between-warnings"));
    }

    #[test]
    fn malformed_reports_are_errors_and_odd_rows_are_skipped() {
        assert!(CredentialReport::parse("").is_err());
        assert!(CredentialReport::parse("user,arn\nalice,x").is_err());
        let csv = format!(
            "{HEADER}\n{}\nshort,row",
            row("a,b", Some((true, &days_ago(95))), None)
        );
        let report = CredentialReport::parse(&csv).expect("parses");
        // Left out, "a,b" is a user the scan does not find in the report: checked live.
        assert!(report.users.is_empty(), "{report:?}");
    }
}
