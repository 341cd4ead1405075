//! keyrotor's functions wired in-process to the in-memory account ([`crate::fake`]) and run
//! by the real state machine definitions ([`crate::asl`]): what the invariant tests drive
//! instead of the emulator.

use keyrotor_aws::member::{take_account, with_account};
use keyrotor_core::config::{vars, Config};
use keyrotor_core::Result;
use serde::Serialize;
use serde_json::Value;

use crate::asl::{Execution, Interpreter, TaskError};
use crate::fake::{FakeAccount, Faulty};
use keyrotor_localstack::stack::{
    Machine, ADMIN_ADDRESS, EXEMPT_GROUP, FROM_ADDRESS, KMS_KEY_ID, TRUSTED_ROLE_ARNS,
};

/// The account as every function sees it: the in-memory account behind a fault layer.
pub type Account = Faulty<FakeAccount>;

/// The per-user machine the scan starts executions of, in-process.
pub const ROTATE_USER_ARN: &str =
    "arn:aws:states:us-east-1:123456789012:stateMachine:keyrotor-rotate";

/// The functions' configuration: the local stack's settings, a deletion delay of zero
/// (the Wait before deletion is zero seconds too), no overlap window, no retirement of
/// unused keys, and `extra` on top.
pub fn config(extra: &[(&str, &str)]) -> Config {
    Config::from_lookup(|name| {
        if let Some((_, v)) = extra.iter().find(|(k, _)| *k == name) {
            return Some((*v).to_owned());
        }
        Some(
            match name {
                vars::FROM_ADDRESS => FROM_ADDRESS,
                vars::ADMIN_ADDRESS => ADMIN_ADDRESS,
                vars::KMS_KEY_ID => KMS_KEY_ID,
                vars::TRUSTED_ROLE_ARNS => TRUSTED_ROLE_ARNS,
                vars::EXEMPT_GROUP => EXEMPT_GROUP,
                vars::STATE_MACHINE_ARN => ROTATE_USER_ARN,
                vars::DELETION_DELAY_SECONDS => "0",
                // No window unless a test opens one; its looks a second apart.
                vars::OVERLAP_SECONDS => "0",
                vars::CUTOVER_POLL_SECONDS => "1",
                // Seeded keys were never used: they are rotated unless a test retires them.
                vars::UNUSED_DAYS => "0",
                _ => return None,
            }
            .to_owned(),
        )
    })
    .expect("test configuration is valid")
}

/// Every function, each with only the ports it uses.
pub struct Functions {
    pub list: list_users::Deps<Account>,
    pub assess: assess_key_age::Deps<Account, Account, Account>,
    pub start: start_rotations::Deps<Account>,
    pub create: create_key::Deps<Account, Account, Account, Account>,
    pub deactivate: deactivate_key::Deps<Account, Account>,
    pub notify: notify::Deps<Account, Account, Account>,
    pub delete: delete_key::Deps<Account, Account>,
    /// KMS, SSM and the settings secrets on the in-memory account; its HTTPS client
    /// points nowhere (GitHub and webhooks are the emulator suite's, `delivery.rs`).
    pub deliver: deliver_key::Deps<Account, Account, Account, Nowhere>,
}

/// Which account layer each function is given.
pub struct Layers<'a> {
    pub list: &'a Account,
    pub assess: &'a Account,
    pub start: &'a Account,
    pub create: &'a Account,
    pub deactivate: &'a Account,
    pub notify: &'a Account,
    pub delete: &'a Account,
    pub deliver: &'a Account,
}

impl Functions {
    /// Every function on the same layer (one set of faults for all).
    pub fn on(account: &Account, config: &Config) -> Self {
        Functions::with(
            &Layers {
                list: account,
                assess: account,
                start: account,
                create: account,
                deactivate: account,
                notify: account,
                delete: account,
                deliver: account,
            },
            config,
        )
    }

    /// Each function on its own layer (to tell their calls apart).
    pub fn with(layers: &Layers<'_>, config: &Config) -> Self {
        let c = || config.clone();
        Functions {
            list: list_users::Deps {
                config: c(),
                iam: layers.list.clone(),
            },
            assess: assess_key_age::Deps {
                config: c(),
                iam: layers.assess.clone(),
                secrets: layers.assess.clone(),
                health: layers.assess.clone(),
            },
            start: start_rotations::Deps::new(c(), layers.start.clone())
                .expect("the per-user machine is configured"),
            create: create_key::Deps {
                config: c(),
                iam: layers.create.clone(),
                secrets: layers.create.clone(),
                verifier: layers.create.clone(),
                handoffs: Some(layers.create.clone()),
            },
            deactivate: deactivate_key::Deps {
                config: c(),
                iam: layers.deactivate.clone(),
                secrets: layers.deactivate.clone(),
            },
            notify: notify::Deps::new(
                c(),
                layers.notify.clone(),
                layers.notify.clone(),
                layers.notify.clone(),
            )
            .expect("the sender is configured"),
            delete: delete_key::Deps {
                config: c(),
                iam: layers.delete.clone(),
                secrets: layers.delete.clone(),
            },
            deliver: deliver_key::Deps {
                config: c(),
                handoffs: Some(layers.deliver.clone()),
                parameters: layers.deliver.clone(),
                settings: layers.deliver.clone(),
                http: Nowhere,
            },
        }
    }

    /// Runs one execution of `machine` (forcing allowed on the per-user machine) to its end.
    pub async fn run(&self, machine: Machine, name: &str, input: Value) -> Execution {
        let definition = machine.local_definition(true).expect("definition");
        Interpreter::new(&definition)
            .expect("interpreter")
            .task("list-users", |i| async move {
                in_own_account(i, |i| list_users::handle(i, &self.list)).await
            })
            .task("assess-key-age", |i| async move {
                in_own_account(i, |i| assess_key_age::handle(i, &self.assess)).await
            })
            .task("start-rotations", |i| async move {
                task(start_rotations::handle(i, &self.start).await)
            })
            .task("create-key", |i| async move {
                in_own_account(i, |i| create_key::handle(i, &self.create)).await
            })
            .task("deactivate-key", |i| async move {
                in_own_account(i, |i| deactivate_key::handle(i, &self.deactivate)).await
            })
            .task("notify", |i| async move {
                task(notify::handle(i, &self.notify).await)
            })
            .task("delete-key", |i| async move {
                in_own_account(i, |i| delete_key::handle(i, &self.delete)).await
            })
            .task("deliver-key", |i| async move {
                in_own_account(i, |i| deliver_key::handle(i, &self.deliver)).await
            })
            .run(name, input)
            .await
            .expect("the definition runs")
    }
}

/// The web as the in-process suites have it: no answer from anywhere.
pub struct Nowhere;

impl deliver_key::http::HttpPort for Nowhere {
    async fn send(
        &self,
        _: deliver_key::http::Request,
    ) -> std::result::Result<deliver_key::http::Response, deliver_key::http::Unreachable> {
        Err(deliver_key::http::Unreachable(
            "the connection failed".into(),
        ))
    }
}

/// A Task of a function that works in an account, as `keyrotor_lambda::serve_in_account`
/// runs it: the event's `account` taken out, the output carrying it on. The in-process account is keyrotor's own, so an event that names a member account
/// fails as in the `self` mode.
pub async fn in_own_account<O: Serialize, F: std::future::Future<Output = Result<O>>>(
    event: Value,
    handler: impl FnOnce(Value) -> F,
) -> std::result::Result<Value, TaskError> {
    let run = async {
        let (account, event) = take_account(event)?;
        if let Some(account) = &account {
            return Err(keyrotor_core::Error::InvalidInput(format!(
                "account {}: this deployment works in its own account only",
                account.id
            )));
        }
        with_account(handler(event).await?, account)
    };
    task(run.await)
}

/// A handler's result as a Task's: its output as JSON, or its error's `errorType` and
/// message.
pub fn task<O: Serialize>(result: Result<O>) -> std::result::Result<Value, TaskError> {
    match result {
        Ok(out) => serde_json::to_value(out).map_err(|e| ("Internal".into(), e.to_string())),
        Err(e) => Err((e.error_type().as_str().to_owned(), e.to_string())),
    }
}

/// How many times a secret value the account issued, or one of `seeded`, appears in the
/// executions' outputs and errors, in any e-mail sent or in any event published (invariant
/// 6): 0 when nothing leaked.
pub fn leaks(
    account: &Account,
    runs: &[Execution],
    seeded: impl IntoIterator<Item = String>,
) -> usize {
    let mut texts: Vec<String> = runs
        .iter()
        .map(|r| format!("{:?} {}", r.status, r.output))
        .collect();
    texts.extend(
        account
            .inner
            .mails()
            .iter()
            .map(|m| format!("{} {} {}", m.subject, m.text, m.html)),
    );
    texts.extend(account.inner.events().iter().map(|e| e.detail.to_string()));
    let mut secrets = account.inner.issued_secrets();
    secrets.extend(seeded);
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    crate::invariants::leak_hits(&secrets, &texts)
}
