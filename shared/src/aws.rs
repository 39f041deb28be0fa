//! AWS SDK configuration, built once per cold start. Endpoints come from the standard
//! variables (`AWS_ENDPOINT_URL`, …), which is how the local stack points at moto.

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// The message of an SDK error, without the request or response it carries (which may
/// hold a secret value).
pub fn error_text<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error,
{
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            format!(
                "{}: {}",
                inner.code().unwrap_or("ServiceError"),
                inner.message().unwrap_or("")
            )
        }
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(_) => "dispatch failure".into(),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "request construction failure".into(),
        _ => "sdk error".into(),
    }
}

pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb as dynamodb;
pub use aws_sdk_secretsmanager as secretsmanager;
pub use aws_sdk_sesv2 as sesv2;
