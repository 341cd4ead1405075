//! Lambda entry point of `deactivate-key`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve_in_account(
        "deactivate-key",
        |event, deps: std::sync::Arc<deactivate_key::Deps>| async move {
            deactivate_key::handle(event, &deps).await
        },
    )
    .await
}
