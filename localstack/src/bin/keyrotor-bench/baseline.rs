//! The baseline keyrotor is measured against: the daily scan loop of the article this
//! project started from, as a read-only measurement written for the bench (not the article's
//! code). One Lambda walks ListUsers page after page (IAM's default page of 100), calls
//! ListAccessKeys for every user, and ListUserTags for every key 80 to 89 days old (the
//! article's warning window), one call after another. It sends no mail and changes nothing:
//! only its reads are measured, which is all a scan that finds nothing to do costs it.

use super::*;

/// The article's warning window and rotation age, in whole days.
const WARN_FROM_DAYS: i64 = 80;
const ROTATE_AT_DAYS: i64 = 90;

/// One run of the loop, measured.
pub(crate) struct LoopRun {
    pub(crate) users: usize,
    pub(crate) latency: Duration,
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) wall: Duration,
    /// Keys the loop would rotate (90 days or older), and would warn about (80 to 89).
    pub(crate) due: u64,
    pub(crate) warned: u64,
}

impl LoopRun {
    pub(crate) fn iam_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}

/// Runs the loop over the whole account through the fault proxy, with `latency` added to
/// each of its calls as to keyrotor's.
pub(crate) async fn run_seed_loop(
    stack: &LocalStack,
    users: usize,
    latency: Duration,
) -> Result<LoopRun> {
    let iam = iam_through_proxy(stack);
    let meter = Meter::start(stack, latency)?;
    let now = chrono::Utc::now().timestamp();
    let (mut seen, mut due, mut warned) = (0, 0, 0);
    let mut pages = iam.list_users().into_paginator().send();
    while let Some(page) = pages.next().await {
        for user in page?.users() {
            seen += 1;
            let name = user.user_name();
            let keys = iam.list_access_keys().user_name(name).send().await?;
            for key in keys.access_key_metadata() {
                let created = key.create_date().map_or(now, |d| d.secs());
                let age_days = (now - created) / 86_400;
                if age_days >= ROTATE_AT_DAYS {
                    due += 1;
                } else if age_days >= WARN_FROM_DAYS {
                    // The article reads the tags for the owner's address, then mails.
                    iam.list_user_tags().user_name(name).send().await?;
                    warned += 1;
                }
            }
        }
    }
    let Metered { calls, wall, .. } = meter.stop(stack)?;
    ensure!(
        seen == users,
        "the seed's loop saw {seen} users, not {users}"
    );
    Ok(LoopRun {
        users,
        latency,
        calls,
        wall,
        due,
        warned,
    })
}

/// An IAM client of the bench's own that goes through the fault proxy, so that its calls
/// are counted and delayed like the functions'.
pub(crate) fn iam_through_proxy(stack: &LocalStack) -> aws_sdk_iam::Client {
    let config = aws_sdk_iam::config::Builder::from(&stack.moto.sdk_config())
        .endpoint_url(stack.proxy.endpoint())
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// A measured stretch of the bench's own calls through the fault proxy.
pub(crate) struct Meter(Instant);

/// What a [`Meter`] saw.
pub(crate) struct Metered {
    pub(crate) calls: BTreeMap<String, u64>,
    pub(crate) bytes: u64,
    pub(crate) wall: Duration,
}

impl Meter {
    /// Clears the proxy's counts and delays every call by `latency` from now on.
    pub(crate) fn start(stack: &LocalStack, latency: Duration) -> Result<Self> {
        stack.reset_proxy()?;
        stack.proxy.set_latency(latency)?;
        Ok(Meter(Instant::now()))
    }

    /// The calls and reply bytes since the start, and the time; clears the proxy (counts and
    /// latency).
    pub(crate) fn stop(self, stack: &LocalStack) -> Result<Metered> {
        let wall = self.0.elapsed();
        let calls = stack.proxy.calls()?;
        let bytes = stack.proxy.response_bytes()?.values().sum();
        stack.reset_proxy()?;
        Ok(Metered { calls, bytes, wall })
    }
}
