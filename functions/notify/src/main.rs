//! Lambda entry point of `notify`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve_with_accounts(
        "notify",
        |event, accounts: std::sync::Arc<keyrotor_aws::Accounts<notify::Deps>>| async move {
            notify::handle_in_account(event, &accounts).await
        },
    )
    .await
}
