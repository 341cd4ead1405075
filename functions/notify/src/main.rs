//! Lambda entry point of `notify`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve_in_account(
        "notify",
        keyrotor_lambda::AccountInput::Kept,
        |event, deps: std::sync::Arc<notify::Deps>| async move {
        notify::handle(event, &deps).await
    })
    .await
}
