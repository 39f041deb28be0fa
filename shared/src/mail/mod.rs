//! E-mail: the port (`Mailer`), its SES v2 adapter, and the French messages the gateway
//! sends (rendered here, in Rust: SES templates are one more thing to deploy and moto does
//! not implement them).

pub mod render;

use std::future::Future;
use std::pin::Pin;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use crate::domain::Email;

/// A message ready to send: one recipient, a subject, a text part and an HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub message_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// SES refused this message (unverified sender, suppressed or malformed recipient…):
    /// trying again unchanged will likely fail again, but the next run still tries.
    #[error("refused: {0}")]
    Refused(String),
    /// SES could not be reached or asked to slow down.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

pub type MailFuture<'a> = Pin<Box<dyn Future<Output = Result<SentMail, MailError>> + Send + 'a>>;

/// The port: something that sends one message. Boxed future so it can live behind
/// `Arc<dyn Mailer>` (tests wrap the SES adapter to make chosen sends fail).
pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, message: &'a MailMessage) -> MailFuture<'a>;
}

/// SES v2 `SendEmail` with Simple content (UTF-8 subject, text and HTML parts).
#[derive(Clone, Debug)]
pub struct SesMailer {
    client: crate::aws::LazyClient<Client>,
    sender: Email,
}

impl SesMailer {
    pub fn new(client: impl Into<crate::aws::LazyClient<Client>>, sender: Email) -> Self {
        Self {
            client: client.into(),
            sender,
        }
    }

    pub fn sender(&self) -> &Email {
        &self.sender
    }

    async fn send_now(&self, message: &MailMessage) -> Result<SentMail, MailError> {
        let utf8 = |text: &str| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| MailError::Refused(e.to_string()))
        };
        let content = EmailContent::builder()
            .simple(
                Message::builder()
                    .subject(utf8(&message.subject)?)
                    .body(
                        Body::builder()
                            .text(utf8(&message.text)?)
                            .html(utf8(&message.html)?)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(self.sender.as_str())
            .destination(
                Destination::builder()
                    .to_addresses(message.to.as_str())
                    .build(),
            )
            .content(content)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        Ok(SentMail {
            message_id: out.message_id().unwrap_or_default().to_owned(),
        })
    }
}

impl Mailer for SesMailer {
    fn send<'a>(&'a self, message: &'a MailMessage) -> MailFuture<'a> {
        Box::pin(self.send_now(message))
    }
}

/// The error's code and message only: the request (with the recipient and body) stays out
/// of logs.
fn classify<R>(err: &SdkError<SendEmailError, R>) -> MailError {
    match err {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            let (kind, busy) = match inner {
                SendEmailError::TooManyRequestsException(_) => ("TooManyRequestsException", true),
                SendEmailError::LimitExceededException(_) => ("LimitExceededException", true),
                SendEmailError::MessageRejected(_) => ("MessageRejected", false),
                SendEmailError::MailFromDomainNotVerifiedException(_) => {
                    ("MailFromDomainNotVerifiedException", false)
                }
                SendEmailError::AccountSuspendedException(_) => {
                    ("AccountSuspendedException", false)
                }
                SendEmailError::SendingPausedException(_) => ("SendingPausedException", false),
                _ => (
                    "ServiceError",
                    matches!(
                        inner.code(),
                        Some("InternalFailure" | "ServiceUnavailable" | "Throttling")
                    ),
                ),
            };
            let text = format!(
                "{}: {}",
                inner.code().unwrap_or(kind),
                inner.message().unwrap_or("")
            );
            if busy {
                MailError::Unavailable(text)
            } else {
                MailError::Refused(text)
            }
        }
        SdkError::TimeoutError(_) => MailError::Unavailable("timeout".into()),
        SdkError::DispatchFailure(_) => MailError::Unavailable("dispatch failure".into()),
        SdkError::ResponseError(_) => MailError::Unavailable("unreadable response".into()),
        SdkError::ConstructionFailure(_) => {
            MailError::Refused("request construction failure".into())
        }
        _ => MailError::Unavailable("sdk error".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::operation::send_email::SendEmailOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn message() -> MailMessage {
        MailMessage {
            to: Email::parse("compta@entreprise-btp.fr").unwrap(),
            subject: "Sujet accentué".into(),
            text: "texte".into(),
            html: "<p>html</p>".into(),
        }
    }

    #[tokio::test]
    async fn sends_simple_content_with_both_parts() {
        let rule = mock!(Client::send_email)
            .match_requests(|req| {
                let simple = req.content().and_then(|c| c.simple());
                let body = simple.and_then(|s| s.body());
                req.from_email_address() == Some("rappels@choruspro-gateway.local")
                    && req.destination().map(|d| d.to_addresses())
                        == Some(&["compta@entreprise-btp.fr".to_owned()][..])
                    && simple
                        .and_then(|s| s.subject())
                        .map(|s| (s.data(), s.charset()))
                        == Some(("Sujet accentué", Some("UTF-8")))
                    && body.and_then(|b| b.text()).map(|t| t.data()) == Some("texte")
                    && body.and_then(|b| b.html()).map(|h| h.data()) == Some("<p>html</p>")
            })
            .then_output(|| SendEmailOutput::builder().message_id("m-1").build());
        let client = mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&rule]);
        let mailer = SesMailer::new(
            client,
            Email::parse("rappels@choruspro-gateway.local").unwrap(),
        );
        assert_eq!(mailer.send(&message()).await.unwrap().message_id, "m-1");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn refusals_and_throttling_are_told_apart() {
        let refused = mock!(Client::send_email).then_error(|| {
            SendEmailError::MessageRejected(
                aws_sdk_sesv2::types::error::MessageRejected::builder()
                    .message("Email address is not verified.")
                    .build(),
            )
        });
        let throttled = mock!(Client::send_email).then_error(|| {
            SendEmailError::TooManyRequestsException(
                aws_sdk_sesv2::types::error::TooManyRequestsException::builder().build(),
            )
        });
        let client = mock_client!(aws_sdk_sesv2, RuleMode::Sequential, [&refused, &throttled]);
        let mailer = SesMailer::new(
            client,
            Email::parse("rappels@choruspro-gateway.local").unwrap(),
        );
        let first = mailer.send(&message()).await.unwrap_err();
        assert!(
            matches!(&first, MailError::Refused(t) if t.contains("MessageRejected")),
            "{first:?}"
        );
        let second = mailer.send(&message()).await.unwrap_err();
        assert!(matches!(second, MailError::Unavailable(_)), "{second:?}");
    }
}
