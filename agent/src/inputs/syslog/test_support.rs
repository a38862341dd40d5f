//! Helpers shared by the tests of the syslog input.

use crate::event::{get_path, LogEvent};
use serde_json::Value;

pub(super) fn field<'a>(event: &'a LogEvent, path: &str) -> &'a Value {
    get_path(&event.doc, path).unwrap_or(&Value::Null)
}

pub(super) fn octet_counted(message: &str) -> Vec<u8> {
    format!("{} {message}", message.len()).into_bytes()
}
