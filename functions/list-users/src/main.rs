//! Lambda entry point of `list-users`: wiring only; the handler is in the library target.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    keyrotor_core::runtime::serve(|event, env| async move { list_users::handle(event, &env).await })
        .await
}
