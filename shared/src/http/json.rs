//! Reading a JSON object field by field, collecting every fault for one answer.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{FieldError, Problem, ProblemCode};

pub fn json_response<T: Serialize>(status: u16, value: &T) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(text) => text_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            text,
            &[("content-type", "application/json")],
        ),
        Err(_) => Problem::internal().into_response(),
    }
}

/// An answer of `status` with `text`, these headers in this order, then
/// `cache-control: no-store`: how every JSON, problem+json and CSV answer is made.
pub fn text_response(
    status: StatusCode,
    text: String,
    headers: &[(&'static str, &'static str)],
) -> Response<Body> {
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    let map = response.headers_mut();
    for (name, value) in headers.iter().chain(&[("cache-control", "no-store")]) {
        map.insert(*name, HeaderValue::from_static(value));
    }
    response
}

pub fn empty_response(status: u16) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = lambda_http::http::StatusCode::from_u16(status)
        .unwrap_or(lambda_http::http::StatusCode::NO_CONTENT);
    response
}

/// The body bytes of a request, refused with 413 above `limit`.
pub fn body_bytes(body: &Body, limit: usize) -> Result<&[u8], Problem> {
    let bytes: &[u8] = match body {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > limit {
        return Err(Problem::new(
            ProblemCode::PayloadTooLarge,
            format!(
                "La requête dépasse la taille maximale acceptée ({} Ko).",
                limit / 1024
            ),
        ));
    }
    Ok(bytes)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "booléen",
        Value::Number(_) => "nombre",
        Value::String(_) => "texte",
        Value::Array(_) => "liste",
        Value::Object(_) => "objet",
    }
}

/// A JSON object being read: each accessor records the field as known, and a wrong type as
/// a fault; `finish` reports unknown fields and every fault at once.
pub struct JsonObject {
    map: Map<String, Value>,
    known: Vec<&'static str>,
    type_errors: Vec<FieldError>,
    /// `""` for the body itself, `"project_manager."` for an object inside it: field
    /// errors name the full path.
    path: String,
    /// Unknown fields of the objects read inside this one (see `absorb`).
    nested_unknown: Vec<FieldError>,
}

impl JsonObject {
    pub fn parse(bytes: &[u8]) -> Result<Self, Problem> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Problem::new(
                ProblemCode::MalformedJson,
                "Le corps de la requête est vide : un objet JSON est attendu.",
            ));
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self::within(map, String::new())),
            Ok(other) => Err(Problem::new(
                ProblemCode::MalformedJson,
                format!(
                    "Le corps de la requête doit être un objet JSON, pas un(e) {}.",
                    json_type(&other)
                ),
            )),
            Err(e) => Err(Problem::new(
                ProblemCode::MalformedJson,
                format!(
                    "Le corps de la requête n'est pas du JSON valide (ligne {}, colonne {}).",
                    e.line(),
                    e.column()
                ),
            )),
        }
    }

    fn within(map: Map<String, Value>, path: String) -> Self {
        Self {
            map,
            known: Vec::new(),
            type_errors: Vec::new(),
            path,
            nested_unknown: Vec::new(),
        }
    }

    fn wrong_type(&mut self, name: &'static str, expected: &str, got: &Value) {
        let name = format!("{}{name}", self.path);
        self.type_errors.push(FieldError::new(
            name.clone(),
            "invalid_type",
            format!(
                "Le champ « {name} » doit être {expected} (reçu : {}).",
                json_type(got)
            ),
        ));
    }

    /// An object field, to be read like the body and then handed back with `absorb`;
    /// `null` counts as absent.
    pub fn object(&mut self, name: &'static str) -> Option<JsonObject> {
        self.known.push(name);
        match self.map.get(name).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(Self::within(map, format!("{}{name}.", self.path))),
            Some(other) => {
                self.wrong_type(name, "un objet", &other);
                None
            }
        }
    }

    /// Takes back an object read with `object`: its wrong types and unknown fields are
    /// reported with this one's.
    pub fn absorb(&mut self, child: JsonObject) {
        let unknown = child.unknown_fields();
        self.type_errors.extend(child.type_errors);
        self.nested_unknown.extend(unknown);
    }

    fn unknown_fields(&self) -> Vec<FieldError> {
        let mut unknown: Vec<&String> = self
            .map
            .keys()
            .filter(|k| !self.known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        let mut errors: Vec<FieldError> = unknown
            .into_iter()
            .map(|name| {
                let name = format!("{}{name}", self.path);
                FieldError::new(
                    name.clone(),
                    "unknown_field",
                    format!("Le champ « {name} » n'est pas reconnu."),
                )
            })
            .collect();
        errors.extend(self.nested_unknown.iter().cloned());
        errors
    }

    /// A string field; `null` counts as absent.
    pub fn string(&mut self, name: &'static str) -> Option<String> {
        self.known.push(name);
        match self.map.get(name).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.wrong_type(name, "un texte", &other);
                None
            }
        }
    }

    /// A whole-number field (a size in bytes); `null` counts as absent.
    pub fn integer(&mut self, name: &'static str) -> Option<i64> {
        self.known.push(name);
        match self.map.get(name).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(other) => {
                self.wrong_type(name, "un nombre entier", &other);
                None
            }
        }
    }

    pub fn bool(&mut self, name: &'static str) -> Option<bool> {
        self.known.push(name);
        match self.map.get(name).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(other) => {
                self.wrong_type(name, "un booléen (true ou false)", &other);
                None
            }
        }
    }

    /// Ends the reading: wrong types make a `malformed_json` answer; otherwise unknown
    /// fields join the caller's validation faults in one `validation_failed` answer.
    pub fn finish(self, mut field_errors: Vec<FieldError>) -> Result<(), Problem> {
        if !self.type_errors.is_empty() {
            let detail = match self.type_errors.as_slice() {
                [one] => one.message.clone(),
                many => format!("{} champs n'ont pas le bon type.", many.len()),
            };
            return Err(
                Problem::new(ProblemCode::MalformedJson, detail).with_errors(self.type_errors)
            );
        }
        field_errors.extend(self.unknown_fields());
        if field_errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation(field_errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_and_non_objects() {
        for body in [&b""[..], b"   ", b"{", b"[1,2]", b"\"x\"", b"null"] {
            let p = JsonObject::parse(body).err().unwrap();
            assert_eq!(
                p.code,
                ProblemCode::MalformedJson,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn wrong_types_are_malformed_and_all_listed() {
        let mut o = JsonObject::parse(br#"{"a": 1, "b": "x", "c": "true"}"#).unwrap();
        assert_eq!(o.string("a"), None);
        assert_eq!(o.string("b").as_deref(), Some("x"));
        assert_eq!(o.bool("c"), None);
        let p = o.finish(vec![]).unwrap_err();
        assert_eq!(p.code, ProblemCode::MalformedJson);
        assert_eq!(
            p.errors
                .iter()
                .map(|e| e.field.as_str())
                .collect::<Vec<_>>(),
            vec!["a", "c"]
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let mut o = JsonObject::parse(br#"{"a": "x", "zeta": 1, "passwrd": "y"}"#).unwrap();
        o.string("a");
        let p = o.finish(vec![]).unwrap_err();
        assert_eq!(p.code, ProblemCode::ValidationFailed);
        let fields: Vec<_> = p
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![("passwrd", "unknown_field"), ("zeta", "unknown_field")]
        );
    }

    #[test]
    fn nested_objects_report_full_paths() {
        let mut o =
            JsonObject::parse(br#"{"pm": {"siret": 1, "extra": "x"}, "other": "y"}"#).unwrap();
        let mut pm = o.object("pm").unwrap();
        assert_eq!(pm.string("siret"), None);
        o.absorb(pm);
        let p = o.finish(vec![]).unwrap_err();
        assert_eq!(p.code, ProblemCode::MalformedJson);
        assert_eq!(p.errors[0].field, "pm.siret");

        let mut o =
            JsonObject::parse(br#"{"pm": {"siret": "1", "extra": "x"}, "other": "y"}"#).unwrap();
        let mut pm = o.object("pm").unwrap();
        assert_eq!(pm.string("siret").as_deref(), Some("1"));
        o.absorb(pm);
        let p = o.finish(vec![]).unwrap_err();
        let fields: Vec<_> = p.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["other", "pm.extra"]);

        let mut o = JsonObject::parse(br#"{"pm": "x"}"#).unwrap();
        assert!(o.object("pm").is_none());
        assert_eq!(o.finish(vec![]).unwrap_err().errors[0].field, "pm");
        let mut o = JsonObject::parse(br#"{"pm": null}"#).unwrap();
        assert!(o.object("pm").is_none());
        assert!(o.finish(vec![]).is_ok());
    }

    #[test]
    fn body_limit() {
        let big = Body::Text("x".repeat(2048));
        assert_eq!(
            body_bytes(&big, 1024).unwrap_err().code,
            ProblemCode::PayloadTooLarge
        );
        assert!(body_bytes(&big, 4096).is_ok());
    }
}
