//! Lambda entry point of `assess-key-age`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve_in_account(
        "assess-key-age",
        |event, deps: std::sync::Arc<assess_key_age::Deps>| async move {
            assess_key_age::handle(event, &deps).await
        },
    )
    .await
}
