//! `keyrotor report --format html`: one self-contained page for auditors, with no script,
//! no link and no request of its own. It says when and where it was made and the policy the
//! keys were judged against, shows the active keys' ages as a bar chart (an inline SVG),
//! and lists every key, the non-compliant ones first.
//!
//! The page is well-formed XML as well as HTML (every element closed, every attribute
//! quoted, every value escaped), so that tools and tests can parse it strictly. Elements a
//! reader of the page may want to check carry stable `id`s and `data-` attributes:
//! `#age-chart rect.bar[data-count]`, `#keys tbody tr[data-overdue]`, `#rotate-after`.

use chrono::{DateTime, Utc};
use keyrotor_core::domain::Policy;
use keyrotor_core::html::escape;

use crate::report::Row;
use crate::Target;

/// Everything the page shows.
pub struct Page<'a> {
    pub generated_at: DateTime<Utc>,
    pub target: Option<&'a Target>,
    pub policy: &'a Policy,
    /// Where the policy came from (the deployed function, or this shell's variables).
    pub policy_source: &'a str,
    pub rows: &'a [Row],
}

/// Width in days of one bar of the age chart.
const BIN_DAYS: i64 = 30;

/// The chart's bars: `(from, to, count)` in days, `to` `None` for the last, open bar. The
/// bars reach three past the rotation age, and on to a year when a key is older; older
/// keys share the open bar.
pub fn bins(ages: &[i64], rotate_after: u32) -> Vec<(i64, Option<i64>, usize)> {
    let oldest = ages.iter().copied().max().unwrap_or(0);
    let reach = (i64::from(rotate_after) + 3 * BIN_DAYS).max(oldest.min(365) + 1);
    let closed = (reach + BIN_DAYS - 1) / BIN_DAYS;
    let mut bins: Vec<(i64, Option<i64>, usize)> = (0..closed)
        .map(|i| (i * BIN_DAYS, Some((i + 1) * BIN_DAYS - 1), 0))
        .collect();
    bins.push((closed * BIN_DAYS, None, 0));
    for &age in ages {
        let i = usize::try_from(age.max(0) / BIN_DAYS).unwrap_or(usize::MAX);
        let last = bins.len() - 1;
        bins[i.min(last)].2 += 1;
    }
    bins
}

fn chart(rows: &[Row], rotate_after: u32) -> String {
    let ages: Vec<i64> = rows
        .iter()
        .filter(|r| r.status == Some("Active"))
        .filter_map(|r| r.age_days)
        .collect();
    let bins = bins(&ages, rotate_after);
    let (bar, gap, height, top, bottom) = (52, 8, 180, 20, 40);
    let width = bins.len() * (bar + gap) + gap;
    let max = bins.iter().map(|b| b.2).max().unwrap_or(0).max(1);
    let mut svg = format!(
        "<svg id=\"age-chart\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\">\n<title>Active access keys by age in days</title>\n",
        height + top + bottom,
        height + top + bottom
    );
    for (i, (from, to, count)) in bins.iter().enumerate() {
        let x = gap + i * (bar + gap);
        let h = count * height / max;
        let y = top + height - h;
        let past = *from >= i64::from(rotate_after);
        let label = match to {
            Some(to) => format!("{from}–{to}"),
            None => format!("≥ {from}"),
        };
        svg.push_str(&format!(
            "<g><title>{count} active key(s) aged {label} days</title><rect class=\"bar{}\" x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" data-from=\"{from}\" data-to=\"{}\" data-count=\"{count}\"/>\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{count}</text>\
<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></g>\n",
            if past { " past" } else { "" },
            to.map(|t| t.to_string()).unwrap_or_default(),
            x + bar / 2,
            y.saturating_sub(4).max(12),
            x + bar / 2,
            top + height + 16,
            escape(&label),
        ));
    }
    // The rotation age, between the bars it falls between.
    let at = gap as i64 + i64::from(rotate_after) * (bar + gap) as i64 / BIN_DAYS;
    svg.push_str(&format!(
        "<line id=\"rotation-age\" x1=\"{at}\" y1=\"{top}\" x2=\"{at}\" y2=\"{}\"/><text class=\"axis\" x=\"{}\" y=\"{}\">rotation age: {rotate_after} days</text>\n</svg>",
        top + height,
        at + 4,
        top + 10,
    ));
    svg
}

/// The page, as one string.
pub fn render(page: &Page<'_>) -> String {
    let policy = page.policy;
    let overdue = page.rows.iter().filter(|r| r.overdue).count();
    let keys = page.rows.iter().filter(|r| r.key_id.is_some()).count();
    let verdict = if overdue == 0 {
        "<p id=\"verdict\" class=\"ok\">Compliant: no active key past the rotation age, exempt users aside.</p>".to_owned()
    } else {
        format!(
            "<p id=\"verdict\" class=\"bad\">NOT compliant: {overdue} active key(s) past {} days, exempt users aside. They are listed first.</p>",
            policy.rotate_after_days
        )
    };
    let target = page.target.cloned().unwrap_or(Target {
        account: None,
        region: None,
        state_machines: Vec::new(),
        identity: None,
        member_account: None,
    });
    let unknown = || "unknown".to_owned();
    let warn_days = if policy.warn_days.is_empty() {
        "none".to_owned()
    } else {
        policy
            .warn_days
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let delay = keyrotor_core::domain::planner::deletion_delay(policy);
    let delay = if delay.num_seconds() % 86_400 == 0 {
        format!("{} days", delay.num_days())
    } else {
        format!("{} seconds", delay.num_seconds())
    };
    let facts = [
        (
            "generated-at",
            "Made at",
            page.generated_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
        ),
        (
            "account",
            "Account",
            // The keys are the member account's when the report was made with --account.
            target
                .member_account
                .clone()
                .or_else(|| target.account.clone())
                .unwrap_or_else(unknown),
        ),
        (
            "region",
            "Region",
            target.region.clone().unwrap_or_else(unknown),
        ),
        (
            "identity",
            "Made by",
            target.identity.clone().unwrap_or_else(unknown),
        ),
        (
            "state-machines",
            "State machines",
            if target.state_machines.is_empty() {
                "none found".to_owned()
            } else {
                target.state_machines.join(", ")
            },
        ),
        (
            "policy-source",
            "Policy read from",
            page.policy_source.to_owned(),
        ),
        (
            "rotate-after",
            "Rotation age (days)",
            policy.rotate_after_days.to_string(),
        ),
        ("warn-days", "Warnings at (days)", warn_days),
        ("deletion-delay", "Old key deleted after", delay),
        (
            "max-exemption",
            "Exemption dates honoured up to (days ahead)",
            policy.max_exemption_days.to_string(),
        ),
        ("exempt-tag", "Exemption tag", policy.exempt_tag.clone()),
        (
            "counts",
            "Users, keys",
            format!("{}, {keys}", crate::report::count_users(page.rows)),
        ),
    ];
    let facts: String = facts
        .iter()
        .map(|(id, name, value)| {
            format!(
                "<dt>{}</dt><dd id=\"{id}\">{}</dd>\n",
                escape(name),
                escape(value)
            )
        })
        .collect();

    let mut ordered: Vec<&Row> = page.rows.iter().collect();
    // Non-compliant first, then the oldest; keyless users last.
    ordered.sort_by_key(|r| (!r.overdue, std::cmp::Reverse(r.age_days.unwrap_or(-1))));
    let body: String = ordered
        .iter()
        .map(|r| {
            let last = r.last_used.map_or_else(
                || if r.key_id.is_some() { "never".to_owned() } else { String::new() },
                |t| t.format("%Y-%m-%d").to_string(),
            );
            let last = match &r.unused {
                Some(unused) if r.last_used.is_some() => format!("{last} ({unused})"),
                _ => last,
            };
            format!(
                "<tr class=\"{}\" data-overdue=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>\n",
                if r.overdue { "overdue" } else { "compliant" },
                r.overdue,
                escape(&r.user),
                escape(r.key_id.as_deref().unwrap_or("-")),
                escape(r.status.unwrap_or("-")),
                r.age_days.map(|a| a.to_string()).unwrap_or_default(),
                escape(&last),
                escape(&r.next),
            )
        })
        .collect();

    format!(
        r#"<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8"/>
<title>keyrotor report: IAM access keys of {account}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }}
dt {{ font-weight: 600; }}
dd {{ margin: 0; }}
.ok {{ color: #1a7f37; }}
.bad, tr.overdue td {{ color: #b42318; }}
tr.overdue td {{ font-weight: 600; }}
table {{ border-collapse: collapse; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; white-space: nowrap; }}
td.num {{ text-align: right; }}
td:last-child {{ white-space: normal; }}
rect.bar {{ fill: #4c78a8; }}
rect.bar.past {{ fill: #b42318; }}
#rotation-age {{ stroke: #b42318; stroke-dasharray: 4 3; }}
svg text {{ font-size: 11px; }}
svg text.axis {{ font-size: 10px; fill: #555; }}
</style>
</head>
<body>
<h1>IAM access keys: keyrotor report</h1>
{verdict}
<h2>When, where, and the policy</h2>
<dl id="summary">
{facts}</dl>
<h2>Active keys by age</h2>
<p>Each bar counts the active keys whose age in days falls in its range; red bars are past the rotation age (exempt users' keys included here, not in the verdict).</p>
{chart}
<h2>Every key</h2>
<table id="keys">
<thead><tr><th>User</th><th>Access key</th><th>Status</th><th>Age (days)</th><th>Last used</th><th>Next</th></tr></thead>
<tbody>
{body}</tbody>
</table>
<p>Made by <code>keyrotor report --format html</code>, read-only, from IAM. The JSON of the same report: <code>keyrotor report --format json</code>.</p>
</body>
</html>
"#,
        account = escape(
            target
                .member_account
                .as_deref()
                .or(target.account.as_deref())
                .unwrap_or("an unknown account")
        ),
        chart = chart(page.rows, policy.rotate_after_days),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_age_falls_in_one_bar_and_old_keys_in_the_last() {
        let ages = [0, 29, 30, 89, 90, 120, 5000];
        let bins = bins(&ages, 90);
        assert_eq!(bins.iter().map(|b| b.2).sum::<usize>(), ages.len());
        assert_eq!(bins[0], (0, Some(29), 2));
        assert_eq!(bins[1], (30, Some(59), 1));
        assert_eq!(bins[3], (90, Some(119), 1));
        let last = bins.last().expect("a last bar");
        assert_eq!(last.1, None);
        assert_eq!(last.2, 1, "5000 days: in the open bar");
        // Three bars past the rotation age, at least.
        assert!(bins.iter().filter(|b| b.0 >= 90).count() >= 3);
    }

    fn row(user: &str, key: Option<&str>, age: Option<i64>, active: bool, overdue: bool) -> Row {
        Row {
            user: user.into(),
            key_id: key.map(str::to_owned),
            status: key.map(|_| if active { "Active" } else { "Inactive" }),
            age_days: age,
            last_used: None,
            next: "x < y & z".into(),
            overdue,
            unused: None,
        }
    }

    #[test]
    fn the_page_is_well_formed_with_the_overdue_keys_first_and_every_active_key_charted() {
        let policy = Policy {
            rotate_after_days: 90,
            warn_days: vec![80, 85, 89],
            deletion_delay_secs: 7 * 86_400,
            overlap_secs: 7 * 86_400,
            cutover_settle_secs: 2 * 86_400,
            cutover_poll_secs: 6 * 3_600,
            unused_days: 45,
            exempt_tag: "key-rotation:exempt".into(),
            max_exemption_days: 365,
        };
        let rows = [
            row("young", Some("AKIA0000000000000001"), Some(3), true, false),
            row("old", Some("AKIA0000000000000002"), Some(400), true, true),
            row(
                "gone",
                Some("AKIA0000000000000003"),
                Some(200),
                false,
                false,
            ),
            row("keyless", None, None, false, false),
            row("due", Some("AKIA0000000000000004"), Some(95), true, true),
        ];
        let page = render(&Page {
            generated_at: Utc::now(),
            target: None,
            policy: &policy,
            policy_source: "tests",
            rows: &rows,
        });
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(&page, options).expect("well-formed");
        let users: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("tr") && n.attribute("data-overdue").is_some())
            .filter_map(|tr| tr.first_element_child().and_then(|td| td.text()))
            .collect();
        assert_eq!(users, ["old", "due", "gone", "young", "keyless"]);
        let charted: usize = doc
            .descendants()
            .filter_map(|n| n.attribute("data-count"))
            .map(|c| c.parse::<usize>().expect("count"))
            .sum();
        assert_eq!(charted, 3, "the active keys only");
        assert!(page.contains("x &lt; y &amp; z"));
        assert!(page.contains("an unknown account"));
    }
}
