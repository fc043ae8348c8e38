//! A cursor over one message's fields: each is taken once, by name, with a
//! message that names it; [`Parse::finish`] refuses whatever is left, so a
//! misspelt field is an error, not silently ignored.

use crate::error::FrameError;
use serde_json::{Map, Value};

/// Any one string field (a `resource:<id>` topic is at most 9 + 512).
pub const MAX_FIELD_CHARS: usize = 600;

pub struct Parse {
    action: &'static str,
    map: Map<String, Value>,
}

impl Parse {
    pub fn new(action: &'static str, map: Map<String, Value>) -> Parse {
        Parse { action, map }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    pub fn string(&mut self, name: &str, max: usize) -> Result<Option<String>, FrameError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max => Err(FrameError::bad(format!(
                "`{name}` is longer than {max} characters"
            ))),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(FrameError::bad(format!("`{name}` must be a string"))),
        }
    }

    pub fn required(&mut self, name: &str, max: usize) -> Result<String, FrameError> {
        self.string(name, max)?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| self.missing(name))
    }

    pub fn missing(&self, name: &str) -> FrameError {
        FrameError::bad(format!("missing field `{name}` for {}", self.action))
    }

    pub fn strings(
        &mut self,
        name: &str,
        max_items: usize,
    ) -> Result<Option<Vec<String>>, FrameError> {
        let not_strings = || FrameError::bad(format!("`{name}` must be an array of strings"));
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => {
                if items.len() > max_items {
                    return Err(FrameError::bad(format!(
                        "`{name}` has {} entries; at most {max_items} are accepted",
                        items.len()
                    )));
                }
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) if s.chars().count() <= MAX_FIELD_CHARS => Ok(s),
                        Value::String(_) => Err(FrameError::bad(format!(
                            "an entry of `{name}` is longer than {MAX_FIELD_CHARS} characters"
                        ))),
                        _ => Err(not_strings()),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
            Some(_) => Err(not_strings()),
        }
    }

    pub fn boolean(&mut self, name: &str) -> Result<Option<bool>, FrameError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(FrameError::bad(format!("`{name}` must be true or false"))),
        }
    }

    /// Refuses fields the action does not know.
    pub fn finish(self) -> Result<(), FrameError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => {
                let shown: String = k.chars().take(64).collect();
                Err(FrameError::bad(format!(
                    "unknown field `{shown}` for {}",
                    self.action
                )))
            }
        }
    }
}
