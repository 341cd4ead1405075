//! `keyrotor cutover USER` and `keyrotor extend USER`: an operator ends a rotation's overlap
//! window now, or gives it more time once, on behalf of the owner. Both write the owner's
//! request as a user tag naming the new key (`keyrotor:cutover`, `keyrotor:extend`), which
//! the execution watching the window reads at its next look: the same road as an owner who
//! tags themselves, and the only one. Nothing here touches a key or the secret.

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use keyrotor_aws::{Iam, Secrets};
use keyrotor_core::domain::cutover::MAX_EXTENSION;
use keyrotor_core::domain::{Decision, Overlap};
use keyrotor_core::naming;
use keyrotor_core::state::load_user;
use serde_json::json;

use crate::report::policy;
use crate::Ctx;

/// What the operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Deactivate the old key at the next look.
    Cutover,
    /// Keep it this many more days (1 to 7), once.
    Extend(u32),
}

/// The rotation of `user` in its window: (old key, new key, window).
struct Open {
    old: String,
    new: String,
    window: Overlap,
    next_look_by: DateTime<Utc>,
}

pub async fn request(ctx: &Ctx, user: &str, request: Request) -> Result<i32> {
    if ctx.account().is_some() {
        bail!("--account: the window's requests are written in keyrotor's own account only (tag the user in the member account: {} or {})", naming::USER_TAG_CUTOVER, naming::USER_TAG_EXTEND);
    }
    let machine = ctx.state_machine().await.ok();
    ctx.acting_on(machine.as_deref()).await;
    let origin = policy(ctx).await?;
    let config = &origin.config;
    let iam = Iam::from_sdk(&ctx.sdk);
    let secrets = Secrets::from_sdk(&ctx.sdk, config);
    let live = load_user(&iam, &secrets, config, user, None).await?;
    let name = live.identity.name.clone();
    let poll = keyrotor_core::domain::cutover::seconds(config.policy.cutover_poll_secs);
    // The planner says whether live state is a rotation in its window, as the watching
    // execution's next look will read it (a secret keyrotor cannot trust, a rollback, an
    // exemption meanwhile: no window).
    let plan = live.plan(config, false);
    let open = match (&plan.decision, &live.state.secret.overlap) {
        (
            Decision::Cutover {
                old_key_id,
                new_key_id,
                until,
            },
            Some(window),
        ) if window.key_id == *old_key_id => Open {
            old: old_key_id.clone(),
            new: new_key_id.clone(),
            window: window.clone(),
            next_look_by: (Utc::now() + poll).min(*until),
        },
        (decision, _) => bail!(
            "{name} has no rotation in its overlap window ({}: {}): nothing to cut over or extend",
            decision.name(),
            plan.reason
        ),
    };
    let (tag, value, said) = match request {
        Request::Cutover => (
            naming::USER_TAG_CUTOVER,
            open.new.clone(),
            format!(
                "the old key {} is deactivated at the watching execution's next look, by {}",
                open.old,
                open.next_look_by.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        Request::Extend(days) => {
            if open.window.extended {
                bail!(
                    "the window of {name} was extended once already, until {}: it is not extended again",
                    open.window.until.format("%Y-%m-%d %H:%M UTC")
                );
            }
            if !(1..=MAX_EXTENSION.num_days()).contains(&i64::from(days)) {
                bail!("--days must be 1 to {}", MAX_EXTENSION.num_days());
            }
            let until = open.window.until + chrono::Duration::days(i64::from(days));
            (
                naming::USER_TAG_EXTEND,
                format!("{}:{days}", open.new),
                format!(
                    "the old key {} stays active until {} at the latest (recorded at the next look, by {}); the window is not extended again",
                    open.old,
                    until.format("%Y-%m-%d %H:%M UTC"),
                    open.next_look_by.format("%Y-%m-%d %H:%M UTC")
                ),
            )
        }
    };
    aws_sdk_iam::Client::new(&ctx.sdk)
        .tag_user()
        .user_name(&name)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(tag)
                .value(&value)
                .build()?,
        )
        .send()
        .await
        .map_err(|e| crate::aws_error("tagging the user", e))?;
    match ctx.output {
        crate::Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&ctx.in_context(json!({
                "user": name,
                "oldKeyId": open.old,
                "newKeyId": open.new,
                "tag": {"key": tag, "value": value},
                "window": open.window,
                "nextLookBy": open.next_look_by,
            })))?
        ),
        crate::Output::Text => println!("{name}: tagged {tag}={value}: {said}."),
    }
    Ok(0)
}
