//! Files a request names by `document_id` (uploaded through `POST …/documents`): the one
//! step that turns them into bytes for a deposit, after checking they are the company's,
//! uploaded in time, as announced, and that the deposit they make stays within Chorus
//! Pro's limits — before anything is read in full or sent.

use shared::documents::BucketError;
use shared::domain::Siret;
use shared::domain::document::{Document, DocumentId, Unusable};
use shared::http::{FieldError, Problem, ProblemCode, store_problem};
use shared::ubl;

use crate::State;
use crate::request::RawFile;

/// How the files reach Chorus Pro, which sets the limit on them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carriage {
    /// Embedded in the one UBL file of a deposit: `MAX_FLUX_BYTES` once in base64.
    OneFlux,
    /// One `ajouter/fichier` each (a completion): 10 MB each, `MAX_TOTAL_FILE_BYTES` in all.
    FileByFile,
}

impl Carriage {
    /// A flux embeds the files in its one UBL file; the works submission adds them one by
    /// one (`shared::works::route_of`).
    pub(crate) fn of(route: shared::works::Route) -> Carriage {
        match route.submission {
            shared::works::Submission::UblFlux => Carriage::OneFlux,
            shared::works::Submission::PdfApi => Carriage::FileByFile,
        }
    }
}

/// Reads every document the files name into them (their names too, unless given). Sizes
/// are checked on the records first: a deposit that would be too large reads nothing.
pub(crate) async fn resolve_documents(
    state: &State,
    siret: &Siret,
    mut files: Vec<&mut RawFile>,
    carriage: Carriage,
) -> Result<(), Problem> {
    let inline_bytes: u64 = files.iter().map(|f| f.inline_len()).sum();
    let mut named = Vec::new();
    for (index, file) in files.iter().enumerate() {
        if let Some(raw_id) = file.document_id() {
            if file.has_inline_content() {
                return Err(Problem::validation(vec![FieldError::new(
                    "document_id",
                    "document_or_content",
                    "Un fichier donne à la fois document_id et content_base64 : gardez l'un des deux.",
                )]));
            }
            named.push((index, find_document(state, siret, raw_id).await?));
        }
    }
    let sizes = named
        .iter()
        .map(|(_, d)| d.announced.size)
        .chain([inline_bytes]);
    refuse_oversize(sizes, carriage)?;
    let now = state.clock.now();
    for (index, document) in named {
        let bytes = read_document(state, &document, now).await?;
        let name = document.announced.filename.as_str().to_owned();
        files[index].resolve(name, bytes);
    }
    Ok(())
}

/// The limit of the carriage, on the announced sizes: nothing is read past it.
fn refuse_oversize(sizes: impl Iterator<Item = u64>, carriage: Carriage) -> Result<(), Problem> {
    let violation = match carriage {
        Carriage::OneFlux => ubl::flux_too_large(ubl::flux_bytes_at_least(sizes)),
        Carriage::FileByFile => ubl::total_files_too_large(sizes.sum()),
    };
    match violation {
        Some(v) => Err(crate::request::invalid(vec![v])),
        None => Ok(()),
    }
}

/// The company's record of the document: `422 document_not_found` for an id that is not
/// one, another company's (records live in the company's partition), or past its
/// retention.
async fn find_document(state: &State, siret: &Siret, raw_id: &str) -> Result<Document, Problem> {
    let unknown = || not_found(Unusable::Unknown, raw_id, None);
    let id = DocumentId::parse(raw_id).ok_or_else(unknown)?;
    let document = state
        .store
        .get_document(siret, &id)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(unknown)?;
    if state.clock.now() >= document.deleted_at() {
        return Err(not_found(Unusable::Expired, raw_id, Some(&document)));
    }
    Ok(document)
}

async fn read_document(
    state: &State,
    document: &Document,
    now: time::OffsetDateTime,
) -> Result<Vec<u8>, Problem> {
    let Some(bucket) = &state.documents else {
        tracing::error!("DOCUMENTS_BUCKET is not set");
        return Err(Problem::service_unavailable());
    };
    bucket.read(document, now).await.map_err(|e| match e {
        BucketError::Unusable(why) => {
            tracing::warn!(document_id = document.id.as_str(), reason = ?why, "document refused");
            not_found(why, document.id.as_str(), Some(document))
        }
        BucketError::Aws(text) => {
            tracing::error!(error = %text, "documents bucket failure");
            Problem::service_unavailable()
        }
    })
}

fn not_found(why: Unusable, id: &str, document: Option<&Document>) -> Problem {
    Problem::new(
        ProblemCode::DocumentNotFound,
        why.message_fr(id, document.map(|d| &d.announced)),
    )
}
