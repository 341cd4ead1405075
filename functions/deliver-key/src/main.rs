//! Lambda entry point of `deliver-key`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve_with_accounts(
        "deliver-key",
        |event, accounts: std::sync::Arc<keyrotor_aws::Accounts<deliver_key::Deps>>| async move {
            deliver_key::handle_in_account(event, &accounts).await
        },
    )
    .await
}
