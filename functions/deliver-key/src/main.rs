//! Lambda entry point of `deliver-key`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve(
        |event, deps: std::sync::Arc<deliver_key::Deps>| async move {
            deliver_key::handle(event, &deps).await
        },
    )
    .await
}
