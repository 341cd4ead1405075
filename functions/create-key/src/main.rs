//! Lambda entry point of `create-key`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve_in_account(
        "create-key",
        |event, deps: std::sync::Arc<create_key::Deps>| async move {
            create_key::handle(event, &deps).await
        },
    )
    .await
}
