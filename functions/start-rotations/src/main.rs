//! Lambda entry point of `start-rotations`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_lambda::serve(
        |event, deps: std::sync::Arc<start_rotations::Deps>| async move {
            start_rotations::handle(event, &deps).await
        },
    )
    .await
}
