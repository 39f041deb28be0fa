//! The settings a run recommends, derived from the checks that passed (README, "Going to
//! production"): `FLUX_SYNTAX` from check 6; `WORKS_SUBMISSION` from which works route
//! passed (check 7.w: `pdf_api`; check 7 or an alternative syntax 7.*n*: `ubl_flux`), and
//! `FLUX_SYNTAX_WORKS` only with `ubl_flux`, from the syntax the passing flux check
//! recorded ([`WorksTry`]); then what else the run showed.

use super::report::{Report, Status, WorksTry};

/// The settings derived from what passed, and what else the run showed.
pub fn recommendations(report: &Report) -> (Vec<String>, Vec<String>) {
    let mut settings = Vec::new();
    let mut notes = Vec::new();
    if report.status_of("6") == Some(Status::Pass) {
        settings.push(format!("FLUX_SYNTAX={}", report.flux_syntax));
    } else {
        settings.push(format!(
            "# FLUX_SYNTAX={} did not pass check 6: see its reasons",
            report.flux_syntax
        ));
    }
    works_route(report, &mut settings, &mut notes);
    siret_scheme(report, &mut notes);
    for (id, what) in [("8", "Duplicate number"), ("9a", "Wrong password")] {
        if let Some(check) = report.check(id) {
            notes.push(format!(
                "{what} (check {id}, {}): {}",
                check.status.label(),
                check.summary
            ));
        }
    }
    if !report.mandatory_passed {
        notes.push("Not ready for production: a mandatory check did not pass.".to_owned());
    }
    (settings, notes)
}

/// The first syntax a works statement integrated with as a UBL flux with the gateway's SIRET
/// scheme (check 7, the configured one, comes before its alternatives).
fn passing_works_syntax(report: &Report) -> Option<&str> {
    report
        .checks
        .iter()
        .filter(|c| c.status == Status::Pass)
        .find_map(|c| match &c.works {
            Some(WorksTry::UblFlux {
                syntax,
                gateway_scheme: true,
            }) => Some(syntax.as_str()),
            _ => None,
        })
}

/// `WORKS_SUBMISSION` from which works route passed, and `FLUX_SYNTAX_WORKS` with `ubl_flux`.
fn works_route(report: &Report, settings: &mut Vec<String>, notes: &mut Vec<String>) {
    let tried = report
        .checks
        .iter()
        .any(|c| c.works.is_some() && c.status != Status::Skip);
    let pdf_api = report
        .checks
        .iter()
        .any(|c| c.status == Status::Pass && c.works == Some(WorksTry::PdfApi));
    match (tried, pdf_api, passing_works_syntax(report)) {
        (false, ..) => notes.push(
            "Works statements not qualified: give QUALIFY_MOE_SIRET (and QUALIFY_MOE_SERVICE)."
                .to_owned(),
        ),
        (true, true, flux) => {
            settings.push("WORKS_SUBMISSION=pdf_api".to_owned());
            notes.push(match flux {
                Some(syntax) => format!(
                    "Works statements (A4): the works route (check 7.w) put the statement in the MOE's hands, and the UBL flux integrated as {syntax} too; keep WORKS_SUBMISSION=pdf_api, which names the MOE in a field of its own (WORKS_SUBMISSION=ubl_flux with FLUX_SYNTAX_WORKS={syntax} is the fallback)."
                ),
                None => "Works statements (A4): the works route (check 7.w) put the statement in the MOE's hands; no UBL flux of a works statement integrated: keep WORKS_SUBMISSION=pdf_api.".to_owned(),
            });
        }
        (true, false, Some(syntax)) => {
            settings.push("WORKS_SUBMISSION=ubl_flux".to_owned());
            settings.push(format!("FLUX_SYNTAX_WORKS={syntax}"));
            notes.push(format!(
                "Works statements (A4): the works route (check 7.w) did not pass; the UBL flux integrated as {syntax} with the MOE in AgentParty. Whether the A4 reached the MOE is to be seen in the portal (or a MOE status) before production."
            ));
        }
        (true, false, None) => {
            settings.push(
                "# WORKS_SUBMISSION: neither works route passed (checks 7 and 7.w): see their reasons"
                    .to_owned(),
            );
            notes.push(
                "Works statements (A4) pass by neither route: not ready for works statements."
                    .to_owned(),
            );
        }
    }
}

/// What checks 7 (`schemeID="0009"`) and 7.s (`schemeID="1"`) say of the SIRET scheme.
fn siret_scheme(report: &Report, notes: &mut Vec<String>) {
    let note = match (report.status_of("7"), report.status_of("7.s")) {
        (Some(Status::Fail), Some(Status::Pass)) => {
            "SIRET schemeID: the platform takes 1, not 0009: change SCHEME_SIRET in shared/src/ubl/writer.rs."
        }
        (Some(Status::Pass), Some(Status::Pass)) => {
            "SIRET schemeID: both 0009 and 1 integrate; keep 0009 (EN 16931)."
        }
        (Some(Status::Pass), Some(Status::Fail)) => {
            "SIRET schemeID: 0009 integrates, 1 does not; keep 0009."
        }
        _ => return,
    };
    notes.push(note.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qualify::report::Check;

    const E1: &str = "IN_DP_E1_UBL_INVOICE";
    const E4: &str = "IN_DP_E4_UBL_INVOICE";

    fn flux(id: &str, syntax: &str, gateway_scheme: bool, status: Status) -> Check {
        Check::new(
            id,
            &format!("works A4 alternative: syntaxeFlux {syntax}"),
            false,
        )
        .trying(WorksTry::UblFlux {
            syntax: syntax.to_owned(),
            gateway_scheme,
        })
        .finish(status, "")
    }

    /// Checks 6 and 7.w (the works route, titled as the real one is), then `others`.
    fn report(works_route: Status, others: Vec<Check>) -> Report {
        let route = Check::new(
            "7.w",
            "works A4 by the works route (soumettre DEPOT_PDF_API, MOE as validator)",
            false,
        )
        .trying(WorksTry::PdfApi)
        .finish(works_route, "");
        let mut checks = vec![Check::new("6", "ordinary", true).finish(Status::Pass, "")];
        checks.extend(others);
        checks.push(route);
        Report {
            started_at: String::new(),
            finished_at: String::new(),
            api_url: String::new(),
            token_url: String::new(),
            supplier_siret: String::new(),
            buyer_siret: String::new(),
            moe_siret: Some("21380456000018".to_owned()),
            flux_syntax: E1.to_owned(),
            flux_syntax_works: E1.to_owned(),
            try_alternatives: true,
            emulator: true,
            invoice_numbers: Vec::new(),
            checks,
            mandatory_passed: true,
            recommended_settings: Vec::new(),
            recommendation_notes: Vec::new(),
        }
    }

    fn works_settings(report: &Report) -> Vec<String> {
        recommendations(report)
            .0
            .into_iter()
            .filter(|s| s.contains("WORKS"))
            .collect()
    }

    #[test]
    fn the_flux_passing_and_the_works_route_failing_recommends_the_flux_and_its_syntax() {
        let r = report(Status::Fail, vec![flux("7", E4, true, Status::Pass)]);
        assert_eq!(
            works_settings(&r),
            [
                "WORKS_SUBMISSION=ubl_flux",
                "FLUX_SYNTAX_WORKS=IN_DP_E4_UBL_INVOICE"
            ]
        );
        assert!(recommendations(&r).0.contains(&format!("FLUX_SYNTAX={E1}")));
    }

    #[test]
    fn the_works_route_passing_and_the_flux_failing_recommends_the_works_route_and_no_syntax() {
        // The audit's case: 7 fails, 7.w passes; the syntax used to be the title's last word.
        let r = report(Status::Pass, vec![flux("7", E1, true, Status::Fail)]);
        assert_eq!(works_settings(&r), ["WORKS_SUBMISSION=pdf_api"]);
        let (settings, notes) = recommendations(&r);
        assert!(
            !settings.iter().any(|s| s.contains("validator")),
            "{settings:?}"
        );
        assert!(notes.iter().any(|n| n.contains("no UBL flux")), "{notes:?}");
    }

    #[test]
    fn both_passing_keeps_the_works_route_and_names_the_flux_as_the_fallback() {
        let r = report(Status::Pass, vec![flux("7", E1, true, Status::Pass)]);
        assert_eq!(works_settings(&r), ["WORKS_SUBMISSION=pdf_api"]);
        let (_, notes) = recommendations(&r);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("FLUX_SYNTAX_WORKS=IN_DP_E1_UBL_INVOICE is the fallback")),
            "{notes:?}"
        );
    }

    #[test]
    fn both_failing_recommends_no_works_setting() {
        let r = report(Status::Fail, vec![flux("7", E1, true, Status::Fail)]);
        assert_eq!(
            works_settings(&r),
            [
                "# WORKS_SUBMISSION: neither works route passed (checks 7 and 7.w): see their reasons"
            ]
        );
    }

    #[test]
    fn an_alternative_syntax_counts_by_its_recorded_syntax_and_the_other_scheme_does_not() {
        let others = vec![
            flux("7", E1, true, Status::Fail),
            flux("7.1", E4, true, Status::Pass),
            flux("7.s", E1, false, Status::Pass),
        ];
        let r = report(Status::Fail, others);
        assert_eq!(
            works_settings(&r),
            [
                "WORKS_SUBMISSION=ubl_flux",
                "FLUX_SYNTAX_WORKS=IN_DP_E4_UBL_INVOICE"
            ]
        );
        let only_scheme = vec![
            flux("7", E1, true, Status::Fail),
            flux("7.s", E1, false, Status::Pass),
        ];
        let r = report(Status::Fail, only_scheme);
        assert!(works_settings(&r)[0].starts_with("# WORKS_SUBMISSION"));
        let (_, notes) = recommendations(&r);
        assert!(
            notes.iter().any(|n| n.contains("takes 1, not 0009")),
            "{notes:?}"
        );
    }

    #[test]
    fn without_a_moe_nothing_is_said_of_works_settings() {
        let mut r = report(
            Status::Skip,
            vec![Check::new("7", "works", false).finish(Status::Skip, "no QUALIFY_MOE_SIRET")],
        );
        r.moe_siret = None;
        assert!(works_settings(&r).is_empty());
        let (_, notes) = recommendations(&r);
        assert!(
            notes.iter().any(|n| n.contains("not qualified")),
            "{notes:?}"
        );
    }
}
