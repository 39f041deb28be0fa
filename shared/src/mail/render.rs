//! The French e-mails about a company's technical-account password: the renewal reminder
//! and the "Chorus Pro refuses the password" alert.
//!
//! Each message is written once as a list of blocks and rendered twice (text and HTML), so
//! the two parts cannot drift apart. They are built from the stored account only, which
//! never holds the password: a message cannot leak it.

use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

use super::MailMessage;
use crate::domain::account::PasswordLifetime;
use crate::domain::{CompanyAccount, Email, Environment};

/// Where Chorus Pro refused the credentials (said in the alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionSource {
    /// The settings' live check (`verify`).
    Verification,
    /// A transmission (deposit) of an invoice.
    Transmission,
    /// The follow-up of deposited invoices' statuses.
    StatusSync,
    /// Not known any more (the reminder run retrying an alert left unsent).
    Unspecified,
}

impl RejectionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionSource::Verification => "verification",
            RejectionSource::Transmission => "transmission",
            RejectionSource::StatusSync => "status_sync",
            RejectionSource::Unspecified => "unspecified",
        }
    }

    fn phrase_fr(self) -> &'static str {
        match self {
            RejectionSource::Verification => "lors de la vérification des réglages du compte",
            RejectionSource::Transmission => "lors de l'envoi d'une facture",
            RejectionSource::StatusSync => "lors du suivi de l'état des factures déposées",
            RejectionSource::Unspecified => "lors d'un échange avec Chorus Pro",
        }
    }
}

enum Block {
    /// The sandbox warning, first thing in the message.
    Banner(String),
    Paragraph(String),
    Heading(String),
    Facts(Vec<(&'static str, String)>),
    Steps(Vec<String>),
    Footer(String),
}

const SANDBOX_SUBJECT_MARK: &str = "[QUALIFICATION – bac à sable] ";

fn sandbox_banner(account: &CompanyAccount) -> Option<Block> {
    (account.environment == Environment::Sandbox).then(|| {
        Block::Banner(
            "COMPTE DE QUALIFICATION (BAC À SABLE) : ce compte technique est celui de l'environnement de test de Chorus Pro, pas celui de production. Les factures déposées avec lui ne parviennent à aucun acheteur public."
                .to_owned(),
        )
    })
}

fn portal(environment: Environment) -> &'static str {
    match environment {
        Environment::Production => "https://chorus-pro.gouv.fr",
        Environment::Sandbox => "https://qualif.chorus-pro.gouv.fr",
    }
}

fn environment_fr(environment: Environment) -> &'static str {
    match environment {
        Environment::Production => "production",
        Environment::Sandbox => "qualification (bac à sable)",
    }
}

fn renewal_steps(account: &CompanyAccount) -> Vec<Block> {
    vec![
        Block::Heading("Pour renouveler le mot de passe".into()),
        Block::Paragraph(
            "Seul le gestionnaire principal de votre structure sur Chorus Pro peut le faire :".into(),
        ),
        Block::Steps(vec![
            format!(
                "Connectez-vous au portail Chorus Pro ({}) avec le compte du gestionnaire principal.",
                portal(account.environment)
            ),
            "Ouvrez l'espace « Raccordements », puis « Compte technique ».".into(),
            format!(
                "Choisissez « Réinitialisation du mot de passe d'un compte technique » pour le compte {}.",
                account.technical_login.as_str()
            ),
            "Chorus Pro génère le nouveau mot de passe et ne l'affiche qu'une seule fois : copiez-le aussitôt (ou exportez-le en PDF), sans l'envoyer par e-mail.".into(),
            "Dans l'application, ouvrez « Mon compte » > Chorus Pro, saisissez le nouveau mot de passe et sa confirmation, puis enregistrez.".into(),
        ]),
    ]
}

fn footer(account: &CompanyAccount) -> Block {
    Block::Footer(format!(
        "Vous recevez ce message en tant que référent Chorus Pro de l'entreprise (SIRET {}) dans l'application. Message automatique : merci de ne pas y répondre.",
        account.siret
    ))
}

fn days_fr(n: i64) -> String {
    if n.abs() == 1 {
        format!("{n} jour")
    } else {
        format!("{n} jours")
    }
}

/// `samedi 27 novembre 2027`.
pub fn date_fr(date: Date) -> String {
    let weekday = match date.weekday() {
        Weekday::Monday => "lundi",
        Weekday::Tuesday => "mardi",
        Weekday::Wednesday => "mercredi",
        Weekday::Thursday => "jeudi",
        Weekday::Friday => "vendredi",
        Weekday::Saturday => "samedi",
        Weekday::Sunday => "dimanche",
    };
    let month = match date.month() {
        Month::January => "janvier",
        Month::February => "février",
        Month::March => "mars",
        Month::April => "avril",
        Month::May => "mai",
        Month::June => "juin",
        Month::July => "juillet",
        Month::August => "août",
        Month::September => "septembre",
        Month::October => "octobre",
        Month::November => "novembre",
        Month::December => "décembre",
    };
    let day = if date.day() == 1 {
        "1er".to_owned()
    } else {
        date.day().to_string()
    };
    format!("{weekday} {day} {month} {}", date.year())
}

fn facts(account: &CompanyAccount, expires_on: Date, days_left: i64) -> Block {
    let remaining = if days_left >= 0 {
        ("Jours restants", days_fr(days_left))
    } else {
        ("Expiré depuis", days_fr(-days_left))
    };
    Block::Facts(vec![
        ("Entreprise (SIRET)", account.siret.to_string()),
        (
            "Compte technique",
            account.technical_login.as_str().to_owned(),
        ),
        (
            "Environnement Chorus Pro",
            environment_fr(account.environment).to_owned(),
        ),
        ("Date d'expiration du mot de passe", date_fr(expires_on)),
        remaining,
    ])
}

/// The renewal reminder, as of `today` (UTC calendar day of the run).
pub fn password_reminder(
    to: &Email,
    account: &CompanyAccount,
    lifetime: PasswordLifetime,
    today: Date,
) -> MailMessage {
    let expires_on = account
        .password_expires_at(lifetime)
        .to_offset(UtcOffset::UTC)
        .date();
    let days_left = (expires_on - today).whole_days();
    let (subject, lead) = match days_left {
        n if n >= 2 => (
            format!("expire dans {n} jours"),
            format!(
                "Le mot de passe du compte technique Chorus Pro de votre entreprise expire dans {n} jours, le {}.",
                date_fr(expires_on)
            ),
        ),
        1 => (
            "expire demain".to_owned(),
            format!(
                "Le mot de passe du compte technique Chorus Pro de votre entreprise expire demain, le {}.",
                date_fr(expires_on)
            ),
        ),
        0 => (
            "expire aujourd'hui".to_owned(),
            "Le mot de passe du compte technique Chorus Pro de votre entreprise expire aujourd'hui.".to_owned(),
        ),
        n => (
            "a expiré, factures en attente".to_owned(),
            format!(
                "Le mot de passe du compte technique Chorus Pro de votre entreprise a expiré le {} (il y a {}).",
                date_fr(expires_on),
                days_fr(-n)
            ),
        ),
    };
    let consequence = if days_left >= 0 {
        "À l'expiration, Chorus Pro refusera ce mot de passe. Les factures que vous transmettrez alors ne seront pas perdues : l'application les mettra en attente et les enverra automatiquement dès que le nouveau mot de passe aura été enregistré."
    } else {
        "Chorus Pro refuse désormais ce mot de passe. Les factures transmises depuis l'expiration ne sont pas perdues : elles sont en attente dans l'application et partiront automatiquement dès que le nouveau mot de passe aura été enregistré."
    };
    let mut blocks: Vec<Block> = sandbox_banner(account).into_iter().collect();
    blocks.push(Block::Paragraph("Bonjour,".into()));
    blocks.push(Block::Paragraph(lead));
    blocks.push(facts(account, expires_on, days_left));
    blocks.push(Block::Heading(
        if days_left >= 0 {
            "À l'expiration"
        } else {
            "Vos factures"
        }
        .into(),
    ));
    blocks.push(Block::Paragraph(consequence.into()));
    blocks.extend(renewal_steps(account));
    blocks.push(Block::Paragraph(
        "Ces rappels s'arrêtent dès que le nouveau mot de passe est enregistré dans l'application."
            .into(),
    ));
    blocks.push(footer(account));
    message(
        to,
        account,
        format!(
            "Chorus Pro : le mot de passe du compte technique {subject} (SIRET {})",
            account.siret
        ),
        &blocks,
    )
}

/// The alert sent once when Chorus Pro starts refusing the stored credentials.
pub fn credentials_rejected(
    to: &Email,
    account: &CompanyAccount,
    lifetime: PasswordLifetime,
    source: RejectionSource,
    observed_at: OffsetDateTime,
) -> MailMessage {
    let observed_on = observed_at.to_offset(UtcOffset::UTC).date();
    let expires_on = account
        .password_expires_at(lifetime)
        .to_offset(UtcOffset::UTC)
        .date();
    let days_left = (expires_on - observed_on).whole_days();
    let mut blocks: Vec<Block> = sandbox_banner(account).into_iter().collect();
    blocks.push(Block::Paragraph("Bonjour,".into()));
    blocks.push(Block::Paragraph(format!(
        "Le {}, Chorus Pro a refusé l'identifiant ou le mot de passe du compte technique de votre entreprise, {}.",
        date_fr(observed_on),
        source.phrase_fr()
    )));
    blocks.push(facts(account, expires_on, days_left));
    blocks.push(Block::Paragraph(
        "Causes possibles : le mot de passe a expiré, il a été réinitialisé sur le portail Chorus Pro sans être enregistré dans l'application, ou le compte technique a été désactivé.".into(),
    ));
    blocks.push(Block::Heading("Vos factures".into()));
    blocks.push(Block::Paragraph(
        "Tant qu'un mot de passe valide n'est pas enregistré, les factures que vous transmettez sont mises en attente, sans être perdues ; elles partiront automatiquement dès que le nouveau mot de passe aura été enregistré.".into(),
    ));
    blocks.extend(renewal_steps(account));
    blocks.push(footer(account));
    message(
        to,
        account,
        format!(
            "Chorus Pro refuse le mot de passe du compte technique, factures en attente (SIRET {})",
            account.siret
        ),
        &blocks,
    )
}

/// The facts of a late payment, as the overdue pass computed them.
pub struct OverdueFacts<'a> {
    pub situation: &'a crate::domain::Situation,
    pub clock: &'a crate::domain::payment::PaymentClock,
}

fn amount_fr(value: Option<rust_decimal::Decimal>) -> String {
    value.map_or_else(
        || "non calculé".to_owned(),
        |v| format!("{v:.2} €").replace('.', ","),
    )
}

/// The e-mail of a payment that became late: what is due, since when, the interest so
/// far, the legal basis, and whom to ask (docs/payment-deadline.md).
pub fn payment_overdue(
    to: &Email,
    account: &CompanyAccount,
    facts: &OverdueFacts<'_>,
) -> MailMessage {
    let (sit, clock) = (facts.situation, facts.clock);
    let number = sit.identifiers.invoice_number.as_str();
    let due_on = clock.due_on.map_or_else(String::new, date_fr);
    let mut blocks: Vec<Block> = sandbox_banner(account).into_iter().collect();
    blocks.push(Block::Paragraph("Bonjour,".into()));
    blocks.push(Block::Paragraph(format!(
        "La facture « {number} » (situation n° {} du marché « {} ») n'est pas payée alors que le délai de paiement de {} jours a expiré le {due_on}.",
        sit.number.get(), sit.market_ref, clock.deadline_days
    )));
    let reference = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    blocks.push(Block::Facts(vec![
        ("Montant à payer (TTC)", amount_fr(clock.amount_due)),
        ("Date limite de paiement", due_on.clone()),
        (
            "Jours de retard",
            clock.days_late.map_or_else(String::new, days_fr),
        ),
        (
            "Intérêts moratoires à ce jour",
            amount_fr(clock.late_interest),
        ),
        (
            "Indemnité forfaitaire de recouvrement",
            amount_fr(clock.fixed_indemnity),
        ),
        (
            "Numéro de facture Chorus Pro",
            reference(sit.transmission.chorus_invoice_id.map(|i| i.to_string())),
        ),
        (
            "Numéro de flux Chorus Pro",
            reference(sit.transmission.flux_number.clone()),
        ),
    ]));
    blocks.push(Block::Heading("Ce que dit la loi".into()));
    blocks.push(Block::Paragraph(
        "Le retard de paiement fait courir de plein droit, dès le lendemain de la date limite, des intérêts moratoires (article L2192-13 du code de la commande publique) au taux de la BCE en vigueur au premier jour du semestre, majoré de huit points (article R2192-31), et une indemnité forfaitaire de 40 € pour frais de recouvrement (article D2192-35).".into(),
    ));
    blocks.push(Block::Heading("Que faire".into()));
    blocks.push(Block::Steps(vec![
        "Consultez le statut de la facture dans Chorus Pro (Factures émises, par son numéro) : un statut « Suspendue » ou « À recycler » appelle d'abord votre action.".into(),
        "Sinon, contactez le service comptable de l'acheteur (ou son comptable public) en rappelant le numéro de facture et les références Chorus Pro ci-dessus, et demandez la date de mise en paiement.".into(),
        "Les intérêts moratoires et l'indemnité sont dus sans demande préalable ; s'ils ne sont pas versés avec le principal, réclamez-les par écrit à l'acheteur.".into(),
    ]));
    blocks.push(footer(account));
    message(
        to,
        account,
        format!(
            "Paiement en retard : facture {number} (SIRET {})",
            account.siret
        ),
        &blocks,
    )
}

fn message(to: &Email, account: &CompanyAccount, subject: String, blocks: &[Block]) -> MailMessage {
    let subject = match account.environment {
        Environment::Sandbox => format!("{SANDBOX_SUBJECT_MARK}{subject}"),
        Environment::Production => subject,
    };
    MailMessage {
        to: to.clone(),
        html: to_html(&subject, blocks),
        text: to_text(blocks),
        subject,
    }
}

fn to_text(blocks: &[Block]) -> String {
    let mut out = Vec::new();
    for block in blocks {
        out.push(match block {
            Block::Banner(t) => format!("*** {t} ***"),
            Block::Paragraph(t) | Block::Footer(t) => t.clone(),
            Block::Heading(t) => format!("{t}\n{}", "-".repeat(t.chars().count())),
            Block::Facts(rows) => rows
                .iter()
                .map(|(label, value)| format!("{label} : {value}"))
                .collect::<Vec<_>>()
                .join("\n"),
            Block::Steps(steps) => steps
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{}. {s}", i + 1))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    out.join("\n\n") + "\n"
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn to_html(subject: &str, blocks: &[Block]) -> String {
    let mut body = String::new();
    for block in blocks {
        match block {
            Block::Banner(t) => body.push_str(&format!(
                "<p style=\"background:#b3261e;color:#ffffff;padding:12px;font-weight:bold\">{}</p>\n",
                escape(t)
            )),
            Block::Paragraph(t) => body.push_str(&format!("<p>{}</p>\n", escape(t))),
            Block::Heading(t) => body.push_str(&format!("<h2 style=\"font-size:16px\">{}</h2>\n", escape(t))),
            Block::Facts(rows) => {
                body.push_str("<table style=\"border-collapse:collapse\">\n");
                for (label, value) in rows {
                    body.push_str(&format!(
                        "<tr><th style=\"text-align:left;padding:4px 12px 4px 0\">{}</th><td style=\"padding:4px 0\">{}</td></tr>\n",
                        escape(label),
                        escape(value)
                    ));
                }
                body.push_str("</table>\n");
            }
            Block::Steps(steps) => {
                body.push_str("<ol>\n");
                for s in steps {
                    body.push_str(&format!("<li>{}</li>\n", escape(s)));
                }
                body.push_str("</ol>\n");
            }
            Block::Footer(t) => body.push_str(&format!("<p style=\"color:#555555;font-size:12px\">{}</p>\n", escape(t))),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"fr\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body style=\"font-family:Arial,sans-serif;font-size:14px;color:#1f1f1f\">\n{body}</body>\n</html>\n",
        escape(subject)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TechnicalLogin;
    use time::macros::{date, datetime};

    fn account(environment: Environment) -> CompanyAccount {
        CompanyAccount::sample("TECH_00000000018259@cpp2017.fr", environment)
    }

    fn to() -> Email {
        Email::parse("compta@entreprise-btp.fr").unwrap()
    }

    #[test]
    fn french_dates() {
        assert_eq!(date_fr(date!(2027 - 11 - 27)), "samedi 27 novembre 2027");
        assert_eq!(date_fr(date!(2028 - 02 - 01)), "mardi 1er février 2028");
        assert_eq!(date_fr(date!(2028 - 08 - 29)), "mardi 29 août 2028");
    }

    #[test]
    fn reminder_thirty_days_before() {
        let m = password_reminder(
            &to(),
            &account(Environment::Production),
            PasswordLifetime::default(),
            date!(2027 - 10 - 28),
        );
        assert_eq!(
            m.subject,
            "Chorus Pro : le mot de passe du compte technique expire dans 30 jours (SIRET 21750001600019)"
        );
        for part in [&m.text, &m.html] {
            for needle in [
                "21750001600019",
                "TECH_00000000018259@cpp2017.fr",
                "samedi 27 novembre 2027",
                "Jours restants",
                "30 jours",
                "en attente",
                "automatiquement",
                "gestionnaire principal",
                "Raccordements",
                "Compte technique",
                "Réinitialisation du mot de passe d'un compte technique",
                "Mon compte",
                "https://chorus-pro.gouv.fr",
            ] {
                let needle = if part == &m.html {
                    escape(needle)
                } else {
                    needle.to_owned()
                };
                assert!(part.contains(&needle), "{needle:?} missing from\n{part}");
            }
            assert!(!part.contains("QUALIFICATION"));
        }
        assert!(m.text.contains("Jours restants : 30 jours"), "{}", m.text);
        assert!(m.html.starts_with("<!DOCTYPE html>"));
    }

    #[test]
    fn reminder_wording_follows_days_left() {
        let a = account(Environment::Production);
        let lt = PasswordLifetime::default();
        let subject = |day| password_reminder(&to(), &a, lt, day).subject;
        assert!(subject(date!(2027 - 11 - 26)).contains("expire demain"));
        assert!(subject(date!(2027 - 11 - 27)).contains("expire aujourd'hui"));
        let late = password_reminder(&to(), &a, lt, date!(2027 - 12 - 04));
        assert!(
            late.subject.contains("a expiré, factures en attente"),
            "{}",
            late.subject
        );
        assert!(
            late.text.contains("Expiré depuis : 7 jours"),
            "{}",
            late.text
        );
        assert!(late.text.contains("il y a 7 jours"));
        assert!(
            password_reminder(&to(), &a, lt, date!(2027 - 11 - 20))
                .text
                .contains("expire dans 7 jours")
        );
    }

    #[test]
    fn sandbox_accounts_are_marked_everywhere() {
        let m = password_reminder(
            &to(),
            &account(Environment::Sandbox),
            PasswordLifetime::default(),
            date!(2027 - 11 - 13),
        );
        assert!(
            m.subject
                .starts_with("[QUALIFICATION – bac à sable] Chorus Pro"),
            "{}",
            m.subject
        );
        assert!(
            m.text
                .starts_with("*** COMPTE DE QUALIFICATION (BAC À SABLE)"),
            "{}",
            m.text
        );
        assert!(m.html.contains("COMPTE DE QUALIFICATION (BAC À SABLE)"));
        assert!(m.text.contains("https://qualif.chorus-pro.gouv.fr"));
        let alert = credentials_rejected(
            &to(),
            &account(Environment::Sandbox),
            PasswordLifetime::default(),
            RejectionSource::Transmission,
            datetime!(2027-03-01 09:00 UTC),
        );
        assert!(alert.subject.starts_with("[QUALIFICATION – bac à sable] "));
        assert!(alert.text.contains("COMPTE DE QUALIFICATION"));
    }

    #[test]
    fn alert_says_where_and_what_to_do() {
        let m = credentials_rejected(
            &to(),
            &account(Environment::Production),
            PasswordLifetime::default(),
            RejectionSource::Transmission,
            datetime!(2027-03-01 09:00 UTC),
        );
        assert_eq!(
            m.subject,
            "Chorus Pro refuse le mot de passe du compte technique, factures en attente (SIRET 21750001600019)"
        );
        assert!(
            m.text
                .contains("Le lundi 1er mars 2027, Chorus Pro a refusé"),
            "{}",
            m.text
        );
        assert!(m.text.contains("lors de l'envoi d'une facture"));
        assert!(m.text.contains("Jours restants : 271 jours"), "{}", m.text);
        assert!(
            m.text
                .contains("Réinitialisation du mot de passe d'un compte technique")
        );
        assert!(m.text.contains("partiront automatiquement"));
    }

    #[test]
    fn html_escapes_what_it_shows() {
        let mut a = account(Environment::Production);
        a.technical_login = TechnicalLogin::parse("TECH_a&b'c@cpp2017.fr").unwrap();
        let m = password_reminder(
            &to(),
            &a,
            PasswordLifetime::default(),
            date!(2027 - 10 - 28),
        );
        assert!(m.html.contains("TECH_a&amp;b&#39;c@cpp2017.fr"));
        assert!(!m.html.contains("a&b"));
        assert!(m.text.contains("TECH_a&b'c@cpp2017.fr"));
    }
}
