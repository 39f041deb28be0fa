//! Just enough XML to read the routing data of a UBL invoice: a small tree builder over
//! the text (elements, attributes, text, entities; comments, processing instructions,
//! DOCTYPE and CDATA handled), matching elements by local name so any prefix works.

use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Element {
    pub name: String,
    pub attributes: HashMap<String, String>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first element along a path of local names.
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// Every element along a path of local names (all branches).
    pub fn all_at<'a>(&'a self, path: &[&'a str]) -> Vec<&'a Element> {
        let mut current = vec![self];
        for name in path {
            current = current
                .into_iter()
                .flat_map(|e| e.children_named(name))
                .collect();
        }
        current
    }

    pub fn text_at(&self, path: &[&str]) -> Option<String> {
        self.at(path)
            .map(|e| e.text.trim().to_owned())
            .filter(|t| !t.is_empty())
    }
}

/// Parses a whole document into its root element.
pub fn parse(xml: &str) -> Result<Element, String> {
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut rest = xml.trim_start_matches('\u{feff}');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<?") {
            rest = skip_past(after, "?>")?;
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = skip_past(after, "-->")?;
        } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").ok_or("unterminated CDATA")?;
            if let Some(open) = stack.last_mut() {
                open.text.push_str(&after[..end]);
            }
            rest = &after[end + 3..];
        } else if let Some(after) = rest.strip_prefix("<!") {
            rest = skip_past(after, ">")?;
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or("unterminated end tag")?;
            let name = local_name(after[..end].trim());
            let element = stack.pop().ok_or("end tag without start tag")?;
            if element.name != name {
                return Err(format!("</{name}> closes <{}>", element.name));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => root = Some(element),
            }
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('<') {
            let end = tag_end(after).ok_or("unterminated start tag")?;
            let inside = &after[..end];
            let (inside, self_closing) = match inside.strip_suffix('/') {
                Some(inner) => (inner, true),
                None => (inside, false),
            };
            let element = start_tag(inside)?;
            if root.is_some() && stack.is_empty() {
                return Err("content after the root element".into());
            }
            if self_closing {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            } else {
                stack.push(element);
            }
            rest = &after[end + 1..];
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..end];
            match stack.last_mut() {
                Some(open) => open.text.push_str(&decode_entities(text)),
                None if text.trim().is_empty() => {}
                None => return Err("text outside the root element".into()),
            }
            rest = &rest[end..];
        }
    }
    if !stack.is_empty() {
        return Err("unclosed elements at the end of the document".into());
    }
    root.ok_or_else(|| "no root element".into())
}

fn skip_past<'a>(text: &'a str, marker: &str) -> Result<&'a str, String> {
    text.find(marker)
        .map(|i| &text[i + marker.len()..])
        .ok_or_else(|| format!("missing {marker}"))
}

/// The `>` that ends a start tag, skipping quoted attribute values.
fn tag_end(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            (None, _) => {}
        }
    }
    None
}

fn start_tag(inside: &str) -> Result<Element, String> {
    let inside = inside.trim();
    let name_end = inside
        .find(|c: char| c.is_whitespace())
        .unwrap_or(inside.len());
    let name = &inside[..name_end];
    if name.is_empty() {
        return Err("empty tag name".into());
    }
    let mut attributes = HashMap::new();
    let mut rest = inside[name_end..].trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or("attribute without value")?;
        let key = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let quote = after.chars().next().ok_or("attribute without value")?;
        if quote != '"' && quote != '\'' {
            return Err("unquoted attribute value".into());
        }
        let close = after[1..]
            .find(quote)
            .ok_or("unterminated attribute value")?;
        attributes.insert(
            local_name(key).to_owned(),
            decode_entities(&after[1..1 + close]),
        );
        rest = after[close + 2..].trim_start();
    }
    Ok(Element {
        name: local_name(name).to_owned(),
        attributes,
        ..Element::default()
    })
}

fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = after;
            continue;
        };
        let entity = &after[..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The routing data of a UBL invoice, as the emulator checks it.
#[derive(Debug, Clone, Default)]
pub struct UblInvoice {
    /// `cbc:ID` (BT-1).
    pub number: String,
    /// Seller SIRETs found in `PartyIdentification/ID`, `PartyLegalEntity/CompanyID`
    /// (schemeID 0009) and `EndpointID` (schemeID 0009).
    pub seller_sirets: Vec<String>,
    pub buyer_sirets: Vec<String>,
    /// `cbc:BuyerReference` (BT-10), else the buyer's `Contact/ID` (older E1 UBL, OCA 12.0).
    pub service_code: Option<String>,
    /// `cac:OrderReference/cbc:ID` (BT-13).
    pub commitment_number: Option<String>,
    /// `cac:ContractDocumentReference/cbc:ID` (BT-12).
    pub market_number: Option<String>,
    /// `cbc:ProfileID` (BT-23: the cadre de facturation, A1…A25).
    pub framework: Option<String>,
    pub issue_date: Option<String>,
    pub currency: Option<String>,
    pub credit_note: bool,
    pub tax_exclusive_amount: Option<String>,
    pub tax_inclusive_amount: Option<String>,
    pub payable_amount: Option<String>,
    /// The files embedded in BG-24 (`AdditionalDocumentReference/Attachment`), as digests:
    /// what a test compares with the file it uploaded (`GET /_admin/deposits`).
    pub embedded_files: Vec<EmbeddedFileDigest>,
}

/// One embedded file: its name, MIME code, decoded size and SHA-256.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedFileDigest {
    pub filename: String,
    pub mime_code: String,
    pub size: usize,
    pub sha256: String,
}

fn embedded_files(root: &Element) -> Vec<EmbeddedFileDigest> {
    use base64::Engine as _;
    use sha2::Digest as _;
    root.all_at(&[
        "AdditionalDocumentReference",
        "Attachment",
        "EmbeddedDocumentBinaryObject",
    ])
    .into_iter()
    .map(|e| {
        let attribute = |name: &str| e.attributes.get(name).cloned().unwrap_or_default();
        let compact: String = e.text.split_ascii_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .unwrap_or_default();
        EmbeddedFileDigest {
            filename: attribute("filename"),
            mime_code: attribute("mimeCode"),
            size: bytes.len(),
            sha256: format!("{:x}", sha2::Sha256::digest(&bytes)),
        }
    })
    .collect()
}

impl UblInvoice {
    pub fn read(xml: &str) -> Result<UblInvoice, String> {
        let root = parse(xml)?;
        let credit_note = match root.name.as_str() {
            "Invoice" => false,
            "CreditNote" => true,
            other => return Err(format!("root element {other} is not a UBL Invoice")),
        };
        let number = root
            .text_at(&["ID"])
            .ok_or("the invoice has no cbc:ID (invoice number)")?;
        let seller_sirets = party_sirets(&root, "AccountingSupplierParty");
        if seller_sirets.is_empty() {
            return Err("the invoice names no seller SIRET".into());
        }
        let buyer_sirets = party_sirets(&root, "AccountingCustomerParty");
        let service_code = root
            .text_at(&["BuyerReference"])
            .or_else(|| root.text_at(&["AccountingCustomerParty", "Party", "Contact", "ID"]));
        let total = |name: &str| root.text_at(&["LegalMonetaryTotal", name]);
        Ok(UblInvoice {
            number,
            seller_sirets,
            buyer_sirets,
            service_code,
            commitment_number: root.text_at(&["OrderReference", "ID"]),
            market_number: root.text_at(&["ContractDocumentReference", "ID"]),
            framework: root.text_at(&["ProfileID"]),
            issue_date: root.text_at(&["IssueDate"]),
            currency: root.text_at(&["DocumentCurrencyCode"]),
            credit_note,
            tax_exclusive_amount: total("TaxExclusiveAmount"),
            tax_inclusive_amount: total("TaxInclusiveAmount"),
            payable_amount: total("PayableAmount"),
            embedded_files: embedded_files(&root),
        })
    }
}

fn party_sirets(root: &Element, party: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |value: &str| {
        let value = value.trim();
        if !value.is_empty() && !found.iter().any(|f| f == value) {
            found.push(value.to_owned());
        }
    };
    for id in root.all_at(&[party, "Party", "PartyIdentification", "ID"]) {
        add(&id.text);
    }
    let siret_scheme =
        |e: &&Element| e.attributes.get("schemeID").map(String::as_str) == Some("0009");
    for id in root
        .all_at(&[party, "Party", "PartyLegalEntity", "CompanyID"])
        .into_iter()
        .filter(siret_scheme)
    {
        add(&id.text);
    }
    for id in root
        .all_at(&[party, "Party", "EndpointID"])
        .into_iter()
        .filter(siret_scheme)
    {
        add(&id.text);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
         xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
         xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
  <cbc:ProfileID>A4</cbc:ProfileID>
  <cbc:ID>SIT-2026/03 &amp; B</cbc:ID>
  <cbc:IssueDate>2026-11-30</cbc:IssueDate>
  <cbc:BuyerReference>DIRINFRA</cbc:BuyerReference>
  <cac:OrderReference><cbc:ID>1300012345</cbc:ID></cac:OrderReference>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyLegalEntity><cbc:RegistrationName>X</cbc:RegistrationName>
      <cbc:CompanyID schemeID="0009">81234567600017</cbc:CompanyID></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyIdentification><cbc:ID schemeID='1'>21380456000018</cbc:ID></cac:PartyIdentification>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal><cbc:TaxInclusiveAmount currencyID="EUR">14250.00</cbc:TaxInclusiveAmount></cac:LegalMonetaryTotal>
  <cbc:Note><![CDATA[<not a tag>]]></cbc:Note>
</Invoice>"#;

    #[test]
    fn reads_routing_data_whatever_the_prefix() {
        let invoice = UblInvoice::read(SAMPLE).unwrap();
        assert_eq!(invoice.number, "SIT-2026/03 & B");
        assert_eq!(invoice.seller_sirets, vec!["81234567600017"]);
        assert_eq!(invoice.buyer_sirets, vec!["21380456000018"]);
        assert_eq!(invoice.service_code.as_deref(), Some("DIRINFRA"));
        assert_eq!(invoice.commitment_number.as_deref(), Some("1300012345"));
        assert_eq!(invoice.framework.as_deref(), Some("A4"));
        assert_eq!(invoice.tax_inclusive_amount.as_deref(), Some("14250.00"));
    }

    #[test]
    fn refuses_what_is_not_an_invoice() {
        assert!(UblInvoice::read("not xml at all").is_err());
        assert!(UblInvoice::read("<Order><ID>1</ID></Order>").is_err());
        assert!(UblInvoice::read("<Invoice><ID>1</ID>").is_err());
        assert!(UblInvoice::read("<Invoice><ID>1</ID></Invoice>").is_err());
    }
}
