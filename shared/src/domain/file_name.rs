//! The name of a file sent to Chorus Pro (the invoice's PDF, an attachment): the one safe
//! set of names, for inline files and uploaded documents alike. Chorus Pro limits names to
//! 50 characters with an extension among those it accepts
//! (`docs/chorus-pro.md#limits`); the gateway also refuses what could be read as a path
//! or hides characters (separators, `..`, control characters), since the name travels into
//! the UBL file, the portal and the company's downloads.

/// Chorus Pro's limit on a file name, extension included.
pub const MAX_FILENAME_CHARS: usize = 50;

/// The extensions Chorus Pro accepts for an attachment (OCA `CHORUS_ALLOWED_FORMATS`).
pub const CHORUS_EXTENSIONS: &[&str] = &[
    "bmp", "bz2", "csv", "doc", "docx", "fax", "gif", "gz", "gzip", "htm", "html", "jpeg", "jpg",
    "odp", "ods", "odt", "p7s", "pdf", "png", "pps", "ppt", "pptx", "rtf", "svg", "tgz", "tif",
    "tiff", "txt", "xhtml", "xlc", "xlm", "xls", "xlsx", "xml", "zip",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileNameError {
    Empty,
    TooLong,
    /// A path separator, `..`, a leading dot or a control character.
    Unsafe,
    /// No extension, or one Chorus Pro does not accept.
    Extension,
}

impl FileName {
    pub fn parse(raw: &str) -> Result<FileName, FileNameError> {
        if raw.trim().is_empty() {
            return Err(FileNameError::Empty);
        }
        if raw.chars().count() > MAX_FILENAME_CHARS {
            return Err(FileNameError::TooLong);
        }
        let unsafe_char = |c: char| c.is_control() || matches!(c, '/' | '\\' | ':');
        if raw.chars().any(unsafe_char) || raw.contains("..") || raw.starts_with('.') {
            return Err(FileNameError::Unsafe);
        }
        let accepted = extension_of(raw).is_some_and(|e| CHORUS_EXTENSIONS.contains(&e.as_str()));
        if !accepted {
            return Err(FileNameError::Extension);
        }
        Ok(FileName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The lower-case extension of a file name, if it has one.
pub fn extension_of(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

impl FileNameError {
    pub fn code(self) -> &'static str {
        match self {
            FileNameError::Empty => "required",
            FileNameError::TooLong => "too_long",
            FileNameError::Unsafe => "unsafe_file_name",
            FileNameError::Extension => "file_type_not_accepted",
        }
    }

    pub fn message_fr(self, raw: &str) -> String {
        let shown: String = raw.chars().filter(|c| !c.is_control()).take(60).collect();
        match self {
            FileNameError::Empty => "Le nom du fichier est obligatoire, avec son extension (par exemple situation-03.pdf).".to_owned(),
            FileNameError::TooLong => format!("Le nom de fichier « {shown} » dépasse {MAX_FILENAME_CHARS} caractères (extension comprise) : raccourcissez-le."),
            FileNameError::Unsafe => format!("Le nom de fichier « {shown} » contient un chemin, « .. », un point initial ou un caractère de contrôle : donnez un simple nom de fichier (par exemple situation-03.pdf)."),
            FileNameError::Extension => format!("Le fichier « {shown} » doit avoir une extension acceptée par Chorus Pro (pdf, png, jpg, csv, xlsx, ods, …)."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_pass_and_each_unsafe_one_says_why() {
        for ok in [
            "situation-03.pdf",
            "Décompte n°3.PDF",
            "photo chantier.jpg",
            "a.csv",
        ] {
            assert_eq!(
                FileName::parse(ok).map(|f| f.as_str().to_owned()),
                Ok(ok.to_owned())
            );
        }
        let cases = [
            ("", FileNameError::Empty),
            ("   ", FileNameError::Empty),
            (&*format!("{}.pdf", "a".repeat(47)), FileNameError::TooLong),
            ("../../etc/passwd.pdf", FileNameError::Unsafe),
            ("dossier/situation.pdf", FileNameError::Unsafe),
            ("dossier\\situation.pdf", FileNameError::Unsafe),
            ("C:situation.pdf", FileNameError::Unsafe),
            ("situation..pdf", FileNameError::Unsafe),
            (".pdf", FileNameError::Unsafe),
            ("situ\u{0}ation.pdf", FileNameError::Unsafe),
            ("situation\n.pdf", FileNameError::Unsafe),
            ("situation", FileNameError::Extension),
            ("situation.exe", FileNameError::Extension),
            ("situation.", FileNameError::Extension),
        ];
        for (raw, why) in cases {
            assert_eq!(FileName::parse(raw), Err(why), "{raw:?}");
            assert!(!why.message_fr(raw).contains('\0'));
        }
        assert_eq!(
            FileName::parse(&format!("{}.pdf", "a".repeat(46))).map(|_| ()),
            Ok(())
        );
    }
}
