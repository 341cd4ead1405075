//! Lambda entry point of `delete-key`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve_in_account(
        "delete-key",
        |event, deps: std::sync::Arc<delete_key::Deps>| async move {
            delete_key::handle(event, &deps).await
        },
    )
    .await
}
