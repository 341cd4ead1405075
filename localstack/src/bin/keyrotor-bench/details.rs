//! Weighing `GetAccountAuthorizationDetails` (Filter=User) against the calls it would
//! replace in a scan: ListUsers pages of 1,000, GetGroup for the exemption group once per
//! page, and ListUserTags for each user whose key may need action (as many in flight as
//! `assess-key-age` reads them: its `BATCH_CONCURRENCY`). One call returns users with their
//! tags and groups, up to 1,000 per page in AWS; moto ignores the page size and answers the
//! whole account at once.
//! Both sides run through the fault proxy, which counts their calls and reply bytes.

use futures_util::stream::{self, StreamExt, TryStreamExt};

use super::*;

/// One side of the comparison.
pub(crate) struct Side {
    pub(crate) calls: u64,
    pub(crate) bytes: u64,
    pub(crate) wall: Duration,
    /// Users whose tags it read.
    pub(crate) tagged: usize,
}

impl Side {
    fn of(metered: Metered, tagged: usize) -> Self {
        Side {
            calls: metered.calls.values().sum(),
            bytes: metered.bytes,
            wall: metered.wall,
            tagged,
        }
    }
}

pub(crate) struct Weighed {
    pub(crate) users: usize,
    pub(crate) latency: Duration,
    /// ListUsers + GetGroup + ListUserTags, as the scan reads them.
    pub(crate) scan: Side,
    /// GetAccountAuthorizationDetails with Filter=User.
    pub(crate) details: Side,
}

/// Measures both sides over the account's `users` seeded users, with `latency` per call.
pub(crate) async fn weigh_details(
    stack: &LocalStack,
    users: usize,
    latency: Duration,
) -> Result<Weighed> {
    let iam = iam_through_proxy(stack);
    // The users the scan reads tags for: those whose keys may need action today.
    let worth_a_look: BTreeSet<String> = (0..users)
        .filter(|&i| matches!(kind(i), Kind::Due | Kind::Warn(_) | Kind::Exempt))
        .map(user_name)
        .collect();

    let meter = Meter::start(stack, latency)?;
    let mut tagged = 0;
    let mut pages = iam.list_users().max_items(1000).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page?;
        iam.get_group().group_name(EXEMPT_GROUP).send().await?;
        let names: Vec<&str> = page
            .users()
            .iter()
            .map(|u| u.user_name())
            .filter(|name| worth_a_look.contains(*name))
            .collect();
        tagged += stream::iter(names)
            .map(|name| iam.list_user_tags().user_name(name).send())
            .buffered(assess_key_age::BATCH_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?
            .len();
    }
    let scan = Side::of(meter.stop(stack)?, tagged);

    let meter = Meter::start(stack, latency)?;
    let mut tagged = 0;
    let mut pages = iam
        .get_account_authorization_details()
        .filter(aws_sdk_iam::types::EntityType::User)
        .max_items(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        tagged += page?
            .user_detail_list()
            .iter()
            .filter(|u| !u.tags().is_empty())
            .count();
    }
    let details = Side::of(meter.stop(stack)?, tagged);
    ensure!(
        details.tagged == users,
        "GetAccountAuthorizationDetails returned {} tagged users of {users}",
        details.tagged
    );
    Ok(Weighed {
        users,
        latency,
        scan,
        details,
    })
}
