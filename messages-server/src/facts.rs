//! What the program says about itself, for the checks of its deployment
//! (`tools/check-deployment`): every route, every metric with its help text, every variable it
//! reads with its default. `messages-server facts` prints them as JSON, so a check reads them
//! from the program, not from its source.

use serde::Serialize;

use crate::config::{Config, Variable};

/// The facts, as `messages-server facts` prints them.
#[derive(Debug, Serialize)]
pub struct Facts {
    /// Every route: its path, the methods it takes, whether it is part of the API.
    pub routes: Vec<Route>,
    /// Every metric the server records, with its help text.
    pub metrics: Vec<Metric>,
    /// Every environment variable the server reads, with its default.
    pub variables: Vec<Variable>,
}

/// A route of the table.
#[derive(Debug, Serialize)]
pub struct Route {
    /// Its path, as the router matches it (`/threads/{thread_id}/messages`).
    pub path: &'static str,
    /// The methods it takes.
    pub methods: Vec<&'static str>,
    /// Whether it is part of the API contract (the chat page and the docs are not).
    pub api: bool,
}

/// A metric the server records.
#[derive(Debug, Serialize)]
pub struct Metric {
    /// Its name.
    pub name: &'static str,
    /// Its `# HELP` text.
    pub help: &'static str,
}

impl Facts {
    /// The facts of this build.
    pub fn of_this_build() -> Self {
        Facts {
            routes: crate::routes::all_routes()
                .map(|(path, methods, api)| Route { path, methods, api })
                .collect(),
            metrics: crate::metrics::DESCRIPTIONS
                .iter()
                .map(|&(name, help)| Metric { name, help })
                .collect(),
            variables: Config::variables(),
        }
    }

    /// As pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facts_name_every_route_metric_and_variable() {
        let facts = Facts::of_this_build();
        assert!(
            facts
                .routes
                .iter()
                .any(|r| r.path == "/threads/{thread_id}/messages" && r.methods == ["GET", "POST"])
        );
        assert!(facts.routes.iter().any(|r| r.path == "/" && !r.api));
        assert!(
            facts
                .metrics
                .iter()
                .any(|m| m.name == "http_requests_total")
        );
        assert!(facts.variables.iter().any(|v| v.name == "BIND_ADDR"));
        let json: serde_json::Value = serde_json::from_str(&facts.to_json()).expect("JSON");
        assert!(json["variables"][0]["name"].is_string());
    }
}
