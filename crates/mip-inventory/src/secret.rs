//! References to secrets as the inventory writes them (`{env: NAME}`, `{file: PATH}`,
//! `{prompt: TEXT}`), read for the inventory's credentials and the app definitions' keys.

use crate::decoder::Decoder;
use crate::located::SecretRef;
use crate::names;
use crate::yaml::{Node, Value};
use mip_core::SensitiveSource;

impl Decoder<'_> {
    /// `{env: NAME}` | `{file: PATH}` | `{prompt: TEXT}`; never a literal value.
    pub(crate) fn secret_ref(&mut self, node: &Node, path: &str, allow_generated: bool) -> Option<SecretRef> {
        let at = self.loc(node);
        if matches!(node.value, Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_)) {
            self.error(
                at,
                "literal-secret",
                format!("`{path}` is a literal value: secret values are never written in the inventory"),
                Some("use `{env: VAR}`, `{file: path}` or `{prompt: text}`".to_owned()),
            );
            return None;
        }
        let mut f = self.fields(node, path)?;
        let mut sources = Vec::new();
        for key in ["env", "file", "prompt", "generate", "value"] {
            if let Some(n) = f.get(key) {
                sources.push((key, n));
            }
        }
        self.finish(f, &["env", "file", "prompt", "generate"]);
        match sources.as_slice() {
            [] => {
                self.error(
                    at,
                    "secret-source",
                    format!("`{path}` names no source"),
                    Some("use exactly one of `env`, `file`, `prompt`".to_owned()),
                );
                None
            }
            [(key, n)] => {
                let p = format!("{path}.{key}");
                match *key {
                    "value" => {
                        self.error(
                            self.loc(n),
                            "literal-secret",
                            format!("`{p}`: secret values are never written in the inventory"),
                            Some("use `env`, `file` or `prompt`".to_owned()),
                        );
                        None
                    }
                    "generate" => {
                        if !allow_generated {
                            self.error(
                                self.loc(n),
                                "secret-source",
                                format!("`{p}`: this value comes from outside and cannot be generated"),
                                Some("use `env`, `file` or `prompt`".to_owned()),
                            );
                            return None;
                        }
                        match n.value {
                            Value::Bool(true) => Some(SecretRef { source: SensitiveSource::Generated, at }),
                            _ => {
                                self.type_error(n, &p, "`true`");
                                None
                            }
                        }
                    }
                    "env" => {
                        let v = self.string(n, &p)?;
                        if !names::is_env_var(&v.value) {
                            self.error(
                                v.at.clone(),
                                "invalid-name",
                                format!("`{p}`: `{}` is not an environment variable name", v.value),
                                Some("letters, digits and `_`, not starting with a digit".to_owned()),
                            );
                            return None;
                        }
                        Some(SecretRef { source: SensitiveSource::Env(v.value), at })
                    }
                    "file" => {
                        self.string(n, &p).map(|v| SecretRef { source: SensitiveSource::File(v.value), at })
                    }
                    _ => {
                        self.string(n, &p).map(|v| SecretRef { source: SensitiveSource::Prompt(v.value), at })
                    }
                }
            }
            many => {
                let keys: Vec<String> = many.iter().map(|(k, _)| format!("`{k}`")).collect();
                self.error(
                    at,
                    "secret-source",
                    format!("`{path}` names several sources ({})", keys.join(", ")),
                    Some("keep exactly one".to_owned()),
                );
                None
            }
        }
    }
}
