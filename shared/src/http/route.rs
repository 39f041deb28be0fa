//! The route table of the HTTP API: every route once, with its key as API Gateway names it
//! (`requestContext.routeKey`, the same string as the `HttpApi` event of
//! `infra/template.yaml` and the path of `infra/openapi.yaml`) and the function that serves
//! it. The functions dispatch on it, the local API serves `Route::ALL`, and the route check
//! (`tests/infra/check_routes.py`, through `local-api routes`) compares it with the template
//! and the spec.

use lambda_http::Request;

use super::edge::route_key;

/// The HTTP functions, each a Lambda of `infra/template.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    CompanySettings,
    Identifiers,
    TransmitInvoice,
    Documents,
}

impl Function {
    /// The function's crate (`functions/<name>`), as the bench and the logs name it.
    pub const fn name(self) -> &'static str {
        match self {
            Function::CompanySettings => "company-settings",
            Function::Identifiers => "identifiers",
            Function::TransmitInvoice => "transmit-invoice",
            Function::Documents => "documents",
        }
    }
}

/// Declares the `Route` enum from one table: variant, key, function.
macro_rules! routes {
    ($($(#[$doc:meta])* $variant:ident => $key:literal, $function:ident;)+) => {
        /// Every route of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Route {
            $($(#[$doc])* $variant,)+
        }

        impl Route {
            /// Every route, in the order of the table.
            pub const ALL: &'static [Route] = &[$(Route::$variant,)+];

            /// `METHOD /path/{param}`, as API Gateway names the route.
            pub const fn key(self) -> &'static str {
                match self {
                    $(Route::$variant => $key,)+
                }
            }

            /// The function that serves the route.
            pub const fn function(self) -> Function {
                match self {
                    $(Route::$variant => Function::$function,)+
                }
            }
        }
    };
}

routes! {
    PutChorusAccount => "PUT /v1/companies/{siret}/chorus-account", CompanySettings;
    GetChorusAccount => "GET /v1/companies/{siret}/chorus-account", CompanySettings;
    DeleteChorusAccount => "DELETE /v1/companies/{siret}/chorus-account", CompanySettings;
    VerifyChorusAccount => "POST /v1/companies/{siret}/chorus-account/verify", CompanySettings;
    PutMarket => "PUT /v1/companies/{siret}/markets/{market_ref}", Identifiers;
    GetMarket => "GET /v1/companies/{siret}/markets/{market_ref}", Identifiers;
    ListMarkets => "GET /v1/companies/{siret}/markets", Identifiers;
    PutSituation =>
        "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}", Identifiers;
    GetSituation =>
        "GET /v1/companies/{siret}/markets/{market_ref}/situations/{number}", Identifiers;
    ListMarketSituations =>
        "GET /v1/companies/{siret}/markets/{market_ref}/situations", Identifiers;
    GetBuyer => "GET /v1/companies/{siret}/buyers/{buyer_siret}", Identifiers;
    /// Every situation of the company, across its markets (JSON pages or CSV).
    ListCompanySituations => "GET /v1/companies/{siret}/situations", Identifiers;
    Transmit =>
        "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission",
        TransmitInvoice;
    ResolveTransmission =>
        "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission/resolve",
        TransmitInvoice;
    RecycleTransmission =>
        "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission/recycle",
        TransmitInvoice;
    CompleteTransmission =>
        "POST /v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission/complete",
        TransmitInvoice;
    CreateDocument => "POST /v1/companies/{siret}/documents", Documents;
}

impl Route {
    /// The route of this key, `None` for a key of no route.
    pub fn from_key(key: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|route| route.key() == key)
    }

    /// The route the request was called by.
    pub fn of(request: &Request) -> Option<Route> {
        Route::from_key(&route_key(request))
    }

    /// The routes `function` serves.
    pub fn of_function(function: Function) -> impl Iterator<Item = Route> {
        Route::ALL
            .iter()
            .copied()
            .filter(move |route| route.function() == function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_read_back_as_its_route() {
        for route in Route::ALL {
            assert_eq!(Route::from_key(route.key()), Some(*route));
        }
        assert_eq!(Route::from_key(""), None);
        assert_eq!(
            Route::from_key("PATCH /v1/companies/{siret}/chorus-account"),
            None
        );
    }

    #[test]
    fn keys_are_unique_and_shaped_as_api_gateway_names_them() {
        let keys: std::collections::HashSet<&str> = Route::ALL.iter().map(|r| r.key()).collect();
        assert_eq!(keys.len(), Route::ALL.len());
        for key in keys {
            let (method, path) = key.split_once(' ').expect("METHOD /path");
            assert!(["GET", "PUT", "POST", "DELETE"].contains(&method), "{key}");
            assert!(path.starts_with("/v1/companies/{siret}"), "{key}");
        }
    }

    #[test]
    fn each_function_serves_its_routes() {
        let count = |f| Route::of_function(f).count();
        assert_eq!(count(Function::CompanySettings), 4);
        assert_eq!(count(Function::Identifiers), 8);
        assert_eq!(count(Function::TransmitInvoice), 4);
        assert_eq!(count(Function::Documents), 1);
        assert_eq!(Route::Transmit.function().name(), "transmit-invoice");
    }
}
