//! Lambda entry point of `scan-accounts`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve(
        |event, deps: std::sync::Arc<scan_accounts::Deps>| async move {
            scan_accounts::handle(event, &deps).await
        },
    )
    .await
}
