//! Lambda entry point of `list-users`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve_in_account(
        "list-users",
        |event, deps: std::sync::Arc<list_users::Deps>| async move {
            list_users::handle(event, &deps).await
        },
    )
    .await
}
