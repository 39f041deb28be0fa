//! A large document uploaded to the gateway's bucket before a transmission names it
//! (contract additions, "Large documents"): what a company may announce, the identifier it
//! gets back, and what makes a stored document usable in a deposit.
//!
//! The rules on names, types and sizes are those of an inline file: the safe name set of
//! [`FileName`], the MIME code EN 16931 allows for its extension (BR-CL-24,
//! [`crate::ubl::mime_code_for`]), and Chorus Pro's 10 MB per file
//! ([`crate::ubl::MAX_FILE_BYTES`], docs/chorus-pro.md#limits).

use time::{Duration, OffsetDateTime};

use super::{FileName, Siret};
use crate::ubl::{MAX_FILE_BYTES, mime_code_for};

/// How long the pre-signed upload URL is valid.
pub const UPLOAD_WINDOW: Duration = Duration::minutes(15);
/// S3 checks the URL's expiry when an upload starts and dates the object when it ends: a
/// 10 MB upload started in the window's last second may end this much later.
pub const UPLOAD_DURATION_ALLOWED: Duration = Duration::minutes(5);
/// How long an uploaded document is kept (the bucket's lifecycle rule deletes it then).
pub const RETENTION: Duration = Duration::days(30);

/// 32 lower-case hex digits (a random UUID v4, 122 random bits): unguessable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentId(String);

impl DocumentId {
    pub fn random() -> DocumentId {
        DocumentId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// `None` for anything that is not the shape the gateway hands out.
    pub fn parse(raw: &str) -> Option<DocumentId> {
        let shaped = raw.len() == 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        shaped.then(|| DocumentId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object key: under the company's prefix, so that IAM and a reader of the bucket
    /// see whose it is.
    pub fn object_key(&self, siret: &Siret) -> String {
        format!("documents/{siret}/{}", self.0)
    }
}

/// One fault of an announced upload: the field, a stable code, the French message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFault {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// What a company announces before uploading: checked like an inline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub filename: FileName,
    pub content_type: &'static str,
    pub size: u64,
}

impl Announced {
    /// Every fault at once.
    pub fn check(
        filename: &str,
        content_type: &str,
        size: Option<i64>,
    ) -> Result<Announced, Vec<UploadFault>> {
        let mut faults = Vec::new();
        let name = FileName::parse(filename)
            .map_err(|e| faults.push(fault("filename", e.code(), e.message_fr(filename))))
            .ok();
        let expected = mime_code_for(filename).filter(|_| !content_type.trim().is_empty());
        let content_type = match expected {
            None if content_type.trim().is_empty() => {
                faults.push(fault(
                    "content_type",
                    "required",
                    "Le champ « content_type » (type MIME du fichier, par exemple application/pdf) est obligatoire.".to_owned(),
                ));
                None
            }
            Some(mime) if mime == content_type.trim().to_ascii_lowercase() => Some(mime),
            Some(mime) => {
                faults.push(fault(
                    "content_type",
                    "content_type_mismatch",
                    format!("Le type « {} » ne correspond pas à l'extension du fichier : « {mime} » est attendu.", shown(content_type)),
                ));
                None
            }
            None => {
                faults.push(fault(
                    "content_type",
                    "file_type_not_accepted",
                    "Une facture UBL ne peut embarquer que des fichiers PDF, PNG, JPEG, CSV, XLSX ou ODS : convertissez le fichier en PDF.".to_owned(),
                ));
                None
            }
        };
        let size = check_size(size).map_err(|f| faults.push(f)).ok();
        match (name, content_type, size) {
            (Some(filename), Some(content_type), Some(size)) if faults.is_empty() => {
                Ok(Announced {
                    filename,
                    content_type,
                    size,
                })
            }
            _ => Err(faults),
        }
    }

    pub fn is_pdf(&self) -> bool {
        self.content_type == "application/pdf"
    }
}

fn check_size(size: Option<i64>) -> Result<u64, UploadFault> {
    match size {
        None => Err(fault(
            "size",
            "required",
            "Le champ « size » (taille du fichier en octets) est obligatoire.".to_owned(),
        )),
        Some(n) if n < 1 => Err(fault(
            "size",
            "file_empty",
            "Le fichier annoncé est vide : un document fait au moins 1 octet.".to_owned(),
        )),
        Some(n) if n as u64 > MAX_FILE_BYTES => Err(fault(
            "size",
            "file_too_large",
            format!(
                "Le fichier annoncé fait {n} octets, au-delà des {MAX_FILE_BYTES} octets (10 Mo) que Chorus Pro accepte par fichier : compressez-le ou découpez-le."
            ),
        )),
        Some(n) => Ok(n as u64),
    }
}

fn fault(field: &'static str, code: &'static str, message: String) -> UploadFault {
    UploadFault {
        field,
        code,
        message,
    }
}

fn shown(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// A document as recorded when its upload URL was handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub siret: Siret,
    pub id: DocumentId,
    pub announced: Announced,
    pub created_at: OffsetDateTime,
    /// The end of the upload window: an object written later was not uploaded through the
    /// URL the gateway handed out.
    pub upload_expires_at: OffsetDateTime,
}

impl Document {
    pub fn new(siret: Siret, announced: Announced, now: OffsetDateTime) -> Document {
        Document {
            siret,
            id: DocumentId::random(),
            announced,
            created_at: now,
            upload_expires_at: now + UPLOAD_WINDOW,
        }
    }

    /// When the record and the object are gone (the table's TTL, the bucket's lifecycle).
    pub fn deleted_at(&self) -> OffsetDateTime {
        self.created_at + RETENTION
    }

    pub fn object_key(&self) -> String {
        self.id.object_key(&self.siret)
    }

    /// Why the stored object cannot be used, if it cannot: past the retention, written
    /// after the upload window, or not of the announced size.
    pub fn unusable(
        &self,
        stored_size: u64,
        stored_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<Unusable> {
        if now >= self.deleted_at() {
            Some(Unusable::Expired)
        } else if stored_at > self.upload_expires_at + UPLOAD_DURATION_ALLOWED {
            Some(Unusable::UploadedTooLate)
        } else if stored_size != self.announced.size {
            Some(Unusable::SizeDiffers {
                stored: stored_size,
            })
        } else {
            None
        }
    }
}

/// Why a document cannot be used; each answers `422 document_not_found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// No record for this company (unknown, or another company's).
    Unknown,
    /// The record exists but nothing was uploaded.
    NeverUploaded,
    Expired,
    UploadedTooLate,
    SizeDiffers {
        stored: u64,
    },
    /// Announced as a PDF, but its content does not start with `%PDF-`.
    NotAPdf,
}

impl Unusable {
    pub fn message_fr(self, id: &str, announced: Option<&Announced>) -> String {
        let name = announced
            .map(|a| format!(" (« {} »)", a.filename.as_str()))
            .unwrap_or_default();
        match self {
            Unusable::Unknown => format!(
                "Le document « {} » n'existe pas pour cette entreprise : déposez le fichier par POST /v1/companies/{{siret}}/documents et utilisez l'identifiant rendu.",
                shown(id)
            ),
            Unusable::NeverUploaded => format!(
                "Le document « {id} »{name} n'a pas été déposé : envoyez le fichier à l'adresse de dépôt (PUT) avant de transmettre."
            ),
            Unusable::Expired => format!(
                "Le document « {id} »{name} a expiré (les documents sont conservés 30 jours) : déposez-le de nouveau."
            ),
            Unusable::UploadedTooLate => format!(
                "Le document « {id} »{name} a été déposé après l'expiration de son adresse de dépôt (15 minutes) : demandez une nouvelle adresse et déposez-le de nouveau."
            ),
            Unusable::SizeDiffers { stored } => format!(
                "Le fichier déposé pour le document « {id} »{name} fait {stored} octets au lieu des {} annoncés : demandez une nouvelle adresse et déposez le bon fichier.",
                announced.map(|a| a.size).unwrap_or_default()
            ),
            Unusable::NotAPdf => format!(
                "Le document « {id} »{name} est annoncé comme PDF mais son contenu ne commence pas par %PDF- : déposez le vrai fichier PDF."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SiretCheck;

    fn siret() -> Siret {
        Siret::parse("81234567600017", SiretCheck::ShapeOnly).unwrap()
    }

    fn codes(r: Result<Announced, Vec<UploadFault>>) -> Vec<(&'static str, &'static str)> {
        r.unwrap_err().iter().map(|f| (f.field, f.code)).collect()
    }

    #[test]
    fn an_announced_pdf_is_checked_like_an_inline_file() {
        let ok = Announced::check("situation-03.pdf", "application/pdf", Some(8_000_000)).unwrap();
        assert!(ok.is_pdf());
        assert_eq!(ok.size, 8_000_000);
        assert!(Announced::check("Situation.PDF", "Application/PDF", Some(1)).is_ok());
        assert_eq!(
            codes(Announced::check(
                "../etc/passwd.pdf",
                "application/pdf",
                Some(10)
            )),
            [("filename", "unsafe_file_name")]
        );
        assert_eq!(
            codes(Announced::check("a/b.pdf", "application/pdf", Some(10))),
            [("filename", "unsafe_file_name")]
        );
        assert_eq!(
            codes(Announced::check("s.pdf", "image/png", Some(0))),
            [
                ("content_type", "content_type_mismatch"),
                ("size", "file_empty")
            ]
        );
        assert_eq!(
            codes(Announced::check(
                "s.pdf",
                "application/pdf",
                Some(11_000_000)
            )),
            [("size", "file_too_large")]
        );
        assert!(Announced::check("s.pdf", "application/pdf", Some(10_000_000)).is_ok());
        assert_eq!(
            codes(Announced::check("s.pdf", " ", Some(1))),
            [("content_type", "required")]
        );
        assert_eq!(
            codes(Announced::check("s.docx", "application/msword", None)),
            [
                ("content_type", "file_type_not_accepted"),
                ("size", "required")
            ]
        );
    }

    #[test]
    fn ids_are_random_hex_under_the_company_prefix() {
        let a = DocumentId::random();
        assert_ne!(a, DocumentId::random());
        assert_eq!(DocumentId::parse(a.as_str()), Some(a.clone()));
        assert!(DocumentId::parse("../81234567600017/x").is_none());
        assert!(DocumentId::parse(&a.as_str().to_uppercase()).is_none());
        assert_eq!(
            a.object_key(&siret()),
            format!("documents/81234567600017/{}", a.as_str())
        );
    }

    #[test]
    fn a_stored_object_is_usable_only_as_announced_and_in_time() {
        let now = OffsetDateTime::now_utc();
        let announced = Announced::check("s.pdf", "application/pdf", Some(100)).unwrap();
        let doc = Document::new(siret(), announced, now);
        assert_eq!(doc.unusable(100, now + Duration::minutes(14), now), None);
        assert_eq!(
            doc.unusable(101, now, now),
            Some(Unusable::SizeDiffers { stored: 101 })
        );
        // Ending a slow upload started in time is fine; one written later is not.
        assert_eq!(doc.unusable(100, now + Duration::minutes(19), now), None);
        assert_eq!(
            doc.unusable(
                100,
                now + Duration::minutes(21),
                now + Duration::minutes(21)
            ),
            Some(Unusable::UploadedTooLate)
        );
        assert_eq!(
            doc.unusable(100, now, now + Duration::days(30)),
            Some(Unusable::Expired)
        );
    }
}
