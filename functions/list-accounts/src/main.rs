//! Lambda entry point of `list-accounts`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve(
        |event, deps: std::sync::Arc<list_accounts::Deps>| async move {
            list_accounts::handle(event, &deps).await
        },
    )
    .await
}
