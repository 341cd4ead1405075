//! Lambda entry point of `start-rotations`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_core::runtime::serve(
        |event, env| async move { start_rotations::handle(event, &env).await },
    )
    .await
}
