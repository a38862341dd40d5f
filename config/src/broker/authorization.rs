//! `[authorization]`: whether the broker enforces Kafka ACLs, and who bypasses them. The ACLs
//! themselves are cluster metadata, managed with CreateAcls / DeleteAcls (`millrace acl`).

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// ACL enforcement (Kafka's `authorizer.class.name`, `super.users`,
/// `allow.everyone.if.no.acl.found`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationSettings {
    /// Enforce ACLs in every request. Off: every principal may do everything, and the ACL APIs
    /// answer SECURITY_DISABLED, as a Kafka broker without an authorizer does.
    pub enabled: bool,
    /// Principals (`User:admin`, `User:CN=ops,O=example`) allowed everything whatever the ACLs say.
    pub super_users: Vec<String>,
    /// Allow an action on a resource no ACL applies to. Kafka's default with an authorizer is
    /// false: what no ACL grants is refused.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizationSettings {
    /// Checks the super users are Kafka principals; `origin` names the file.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        for user in &self.super_users {
            let valid = user.split_once(':').is_some_and(|(kind, name)| !kind.is_empty() && !name.is_empty());
            if !valid {
                return Err(ConfigError::invalid(
                    origin,
                    "authorization.super_users",
                    format!("`{user}` is not a principal of the form Type:name"),
                    "write principals as Kafka does, e.g. [\"User:admin\"]",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_broker;

    #[test]
    fn authorization_is_off_by_default_and_parses() {
        let config = parse_broker("", "b.toml").unwrap();
        assert!(!config.authorization.enabled);
        let text = "[authorization]\nenabled = true\nsuper_users = [\"User:admin\", \"User:CN=ops,O=x\"]\n";
        let config = parse_broker(text, "b.toml").unwrap();
        assert!(config.authorization.enabled);
        assert!(!config.authorization.allow_everyone_if_no_acl_found);
        assert_eq!(config.authorization.super_users, ["User:admin", "User:CN=ops,O=x"]);
    }

    #[test]
    fn a_super_user_must_be_a_principal() {
        for bad in ["admin", "User:", ":admin"] {
            let text = format!("[authorization]\nsuper_users = [\"{bad}\"]\n");
            let err = parse_broker(&text, "b.toml").unwrap_err().to_string();
            assert!(err.contains("authorization.super_users") && err.contains("fix:"), "{bad}: {err}");
        }
        let err = parse_broker("[authorization]\nenable = true\n", "b.toml").unwrap_err().to_string();
        assert!(err.contains("enable"), "{err}");
    }
}
