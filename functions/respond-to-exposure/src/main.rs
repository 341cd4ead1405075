//! Lambda entry point of `respond-to-exposure`: wiring only; the handler is in the library
//! target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve(
        |event, deps: std::sync::Arc<respond_to_exposure::Deps>| async move {
            respond_to_exposure::handle(event, &deps).await
        },
    )
    .await
}
