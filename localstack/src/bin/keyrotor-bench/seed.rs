//! Seeding the account: the mix of users of a daily account, straight into moto's backend.

use super::*;

/// Users per seeding request to moto.
pub(crate) const SEED_CHUNK: usize = 1000;
/// What a seeded user is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One key past the rotation age.
    Due,
    /// One key on a warning day.
    Warn(i64),
    /// No access keys.
    Keyless,
    /// An old key, but in the exemption group.
    Exempt,
    /// One key not due and not on a warning day.
    Young(i64),
}

/// The mix of a daily account: 1 in 90 due, 1 in 30 on one of the three warning days.
pub(crate) fn kind(i: usize) -> Kind {
    const WARNING_DAYS: [i64; 3] = [80, 85, 89];
    if i.is_multiple_of(90) {
        Kind::Due
    } else if i % 30 == 15 {
        Kind::Warn(WARNING_DAYS[(i / 30) % 3])
    } else if i % 100 == 7 {
        Kind::Keyless
    } else if i % 250 == 3 {
        Kind::Exempt
    } else {
        // Spread over 0..=88 days, off the warning days (which move a day younger).
        let age = i64::try_from((i * 7) % 89).unwrap_or(0);
        Kind::Young(if WARNING_DAYS.contains(&age) {
            age - 1
        } else {
            age
        })
    }
}

pub(crate) fn user_name(i: usize) -> String {
    format!("user-{i:05}")
}

/// User `i` of the seeded account.
pub(crate) fn test_user(i: usize) -> TestUser {
    let name = user_name(i);
    let user = TestUser::new(&name).tag("Email", &format!("{name}@example.com"));
    match kind(i) {
        Kind::Due => user.key(95, true),
        Kind::Warn(age) | Kind::Young(age) => user.key(age, true),
        Kind::Exempt => user.group(EXEMPT_GROUP).key(150, true),
        Kind::Keyless => user,
    }
}

#[derive(Default)]
pub(crate) struct Seeded {
    pub(crate) users: usize,
    /// Users due for rotation and the key they had.
    pub(crate) due: BTreeMap<String, String>,
    pub(crate) warned: BTreeSet<String>,
}

/// Adds users `seeded.users..to` to the account, straight in moto's backend (over the API
/// this took half a minute for 5,000 users; set-up is not what the bench measures).
pub(crate) async fn seed(stack: &LocalStack, seeded: &mut Seeded, to: usize) -> Result<Duration> {
    let started = Instant::now();
    if seeded.users == 0 {
        let iam = &stack.account.iam;
        iam.create_group()
            .group_name(EXEMPT_GROUP)
            .send()
            .await
            .context("CreateGroup")?;
    }
    let range: Vec<usize> = (seeded.users..to).collect();
    for chunk in range.chunks(SEED_CHUNK) {
        let users: Vec<SeedUser> = chunk
            .iter()
            .map(|&i| {
                test_user(i)
                    .backend_seed()
                    .context("a bench user has one active key at most")
            })
            .collect::<Result<_>>()?;
        let keys = stack.moto.seed_users(ACCOUNT_ID, &users)?;
        for &i in chunk {
            let name = user_name(i);
            match kind(i) {
                Kind::Due => {
                    let key = keys.get(&name).context("a due user got no key")?;
                    seeded.due.insert(name, key.clone());
                }
                Kind::Warn(_) => {
                    seeded.warned.insert(name);
                }
                _ => {}
            }
        }
    }
    seeded.users = to;
    Ok(started.elapsed())
}
