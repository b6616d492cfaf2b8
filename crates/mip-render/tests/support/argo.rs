//! A small model of what Argo CD does with the rendered tree, for tests: go-template
//! evaluation (the sprig subset the templates use), ApplicationSet generators (list, git
//! directories, matrix), kustomize (resources, JSON 6902 patches, namePrefix, namespace),
//! Helm charts (values + parameters) and directory sources. It starts from the root
//! Applications mip applies and collects every Argo CD object that would appear.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An object Argo CD would create, with the Application or ApplicationSet that made it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub manifest: Value,
    pub parent: String,
}

pub struct Tree<'a> {
    pub files: &'a BTreeMap<PathBuf, String>,
    pub own_repos: Vec<String>,
}

fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn term(w: &str, ctx: &Value) -> Value {
    if let Some(lit) = w.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        return json!(lit);
    }
    let mut v = ctx;
    for part in w.trim_start_matches('.').split('.') {
        v = v.get(part).unwrap_or_else(|| panic!("missingkey=error: `{w}` in {ctx}"));
    }
    v.clone()
}

fn s(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn call(f: &str, args: &[Value]) -> Value {
    match (f, args) {
        ("lower", [x]) => json!(s(x).to_lowercase()),
        ("dir", [x]) => json!(Path::new(&s(x)).parent().map(|p| p.display().to_string()).unwrap_or_default()),
        ("base", [x]) => json!(s(x).rsplit('/').next().unwrap_or_default()),
        ("replace", [old, new, x]) => json!(s(x).replace(&s(old), &s(new))),
        ("hasPrefix", [p, x]) => json!(s(x).starts_with(&s(p))),
        ("index", [m, k]) => m.get(s(k)).cloned().unwrap_or(Value::Null),
        ("default", [d, x]) => {
            if x.is_null() || x.as_str() == Some("") {
                d.clone()
            } else {
                x.clone()
            }
        }
        _ => panic!("unsupported template call `{f}` with {args:?}"),
    }
}

fn pipeline(p: &str, ctx: &Value) -> Value {
    let mut acc: Option<Value> = None;
    for seg in p.split('|') {
        let w = words(seg.trim());
        let (head, rest) = w.split_first().expect("non-empty pipeline segment");
        let is_fn = !head.starts_with('.') && !head.starts_with('"');
        if is_fn {
            let mut args: Vec<Value> = rest.iter().map(|a| term(a, ctx)).collect();
            if let Some(a) = acc.take() {
                args.push(a);
            }
            acc = Some(call(head, &args));
        } else {
            assert!(rest.is_empty() && acc.is_none(), "unsupported pipeline `{p}`");
            acc = Some(term(head, ctx));
        }
    }
    acc.expect("value")
}

/// Evaluates a go template.
pub fn eval(tpl: &str, ctx: &Value) -> String {
    let mut out = String::new();
    let mut stack: Vec<(bool, bool, bool)> = Vec::new(); // (parent active, condition, in else)
    let active = |st: &Vec<(bool, bool, bool)>| st.last().is_none_or(|(p, c, e)| *p && (*c != *e));
    let mut rest = tpl;
    while let Some(i) = rest.find("{{") {
        if active(&stack) {
            out.push_str(&rest[..i]);
        }
        let j = rest[i..].find("}}").expect("closed action") + i;
        let action = rest[i + 2..j].trim();
        rest = &rest[j + 2..];
        if let Some(cond) = action.strip_prefix("if ") {
            let parent = active(&stack);
            let c = parent && pipeline(cond, ctx).as_bool().expect("boolean condition");
            stack.push((parent, c, false));
        } else if action == "else" {
            stack.last_mut().expect("if").2 = true;
        } else if action == "end" {
            stack.pop().expect("if");
        } else if active(&stack) {
            out.push_str(&s(&pipeline(action, ctx)));
        }
    }
    out.push_str(rest);
    out
}

/// Expands Helm `range` blocks written on lines of their own (`{{- range PIPELINE }}` …
/// `{{- end }}`, as the federation project template writes its remote destinations): the body
/// once per item, `{{ . }}` the item and `$.` the root.
fn expand_ranges(tpl: &str, ctx: &Value) -> String {
    let lines: Vec<&str> = tpl.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim();
        if let Some(p) = t.strip_prefix("{{- range ").and_then(|r| r.strip_suffix("}}")) {
            let end = (i + 1..lines.len()).find(|&j| lines[j].trim() == "{{- end }}").expect("range end");
            for item in pipeline(p.trim(), ctx).as_array().cloned().unwrap_or_default() {
                for body in &lines[i + 1..end] {
                    out.push_str(&body.replace("{{ . }}", &s(&item)).replace("$.", "."));
                    out.push('\n');
                }
            }
            i = end + 1;
        } else {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
        }
    }
    out
}

fn eval_value(v: &Value, ctx: &Value) -> Value {
    match v {
        Value::String(t) => json!(eval(t, ctx)),
        Value::Array(a) => Value::Array(a.iter().map(|x| eval_value(x, ctx)).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (eval(k, ctx), eval_value(x, ctx))).collect())
        }
        other => other.clone(),
    }
}

fn merge(a: &Value, b: &Value) -> Value {
    let mut m = a.as_object().cloned().unwrap_or_default();
    for (k, v) in b.as_object().cloned().unwrap_or_default() {
        m.insert(k, v);
    }
    Value::Object(m)
}

/// The parameter sets of one generator.
pub fn generate(g: &Value) -> Vec<Value> {
    if let Some(list) = g.get("list") {
        return list["elements"].as_array().cloned().unwrap_or_default();
    }
    if let Some(git) = g.get("git") {
        return git["directories"]
            .as_array()
            .expect("directories")
            .iter()
            .map(|d| {
                let p = d["path"].as_str().expect("path");
                assert!(!p.contains('*'), "mip renders explicit directories");
                json!({ "path": { "path": p, "basename": p.rsplit('/').next() } })
            })
            .collect();
    }
    if let Some(m) = g.get("matrix") {
        let gs = m["generators"].as_array().expect("generators");
        assert_eq!(gs.len(), 2);
        let mut out = Vec::new();
        for a in generate(&gs[0]) {
            for b in generate(&gs[1]) {
                out.push(merge(&a, &b));
            }
        }
        return out;
    }
    panic!("unsupported generator {g}");
}

fn norm(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn docs(text: &str) -> Vec<Value> {
    mip_inventory::yaml::parse_stream("f.yaml", text)
        .expect("rendered YAML parses")
        .iter()
        .map(|n| n.to_json())
        .collect()
}

/// One JSON 6902 `add` or `replace` (RFC 6901 pointers: `~1` is `/`, `~0` is `~`; `add` at an
/// array index inserts, `replace` requires the target to exist).
fn pointer_op(doc: &mut Value, op: &str, path: &str, value: Value) {
    let (parent, last) = path.rsplit_once('/').expect("pointer");
    let last = last.replace("~1", "/").replace("~0", "~");
    let target = doc.pointer_mut(parent).unwrap_or_else(|| panic!("patch target `{parent}` missing"));
    match (op, target) {
        ("add", Value::Array(a)) if last == "-" => a.push(value),
        ("add", Value::Array(a)) => a.insert(last.parse().expect("index"), value),
        ("replace", Value::Array(a)) => a[last.parse::<usize>().expect("index")] = value,
        ("add", Value::Object(m)) => {
            m.insert(last, value);
        }
        ("replace", Value::Object(m)) => {
            assert!(m.contains_key(&last), "replace of missing `{path}`");
            m.insert(last, value);
        }
        (_, other) => panic!("cannot {op} at `{path}` in {other}"),
    }
}

impl Tree<'_> {
    fn read(&self, p: &Path) -> Option<&String> {
        self.files.get(p)
    }

    fn kustomize(&self, dir: &Path) -> Vec<Value> {
        let k = &docs(self.read(&dir.join("kustomization.yaml")).expect("kustomization"))[0];
        let mut out = Vec::new();
        // A kustomization may have no `resources` (Helm charts only, or an empty overlay).
        for r in k["resources"].as_array().into_iter().flatten() {
            let p = norm(&dir.join(r.as_str().expect("resource")));
            if self.files.contains_key(&p.join("kustomization.yaml")) {
                out.extend(self.kustomize(&p));
            } else {
                out.extend(docs(
                    self.read(&p).unwrap_or_else(|| panic!("resource `{}` not rendered", p.display())),
                ));
            }
        }
        for patch in k["patches"].as_array().cloned().unwrap_or_default() {
            let Some(text) = patch["patch"].as_str() else { continue }; // user patch files are not rendered
            let ops = &docs(text)[0];
            for o in &mut out {
                if o["kind"] == patch["target"]["kind"] && o["metadata"]["name"] == patch["target"]["name"] {
                    for op in ops.as_array().expect("ops") {
                        let kind = op["op"].as_str().expect("op");
                        pointer_op(o, kind, op["path"].as_str().expect("path"), op["value"].clone());
                    }
                }
            }
        }
        for o in &mut out {
            let meta = o["metadata"].as_object_mut().expect("metadata");
            if let Some(prefix) = k["namePrefix"].as_str() {
                let name = format!("{prefix}{}", meta["name"].as_str().expect("name"));
                meta.insert("name".into(), json!(name));
            }
            if let Some(ns) = k.get("namespace") {
                meta.insert("namespace".into(), ns.clone());
            }
        }
        out
    }

    fn helm(&self, dir: &Path, source: &Value) -> Vec<Value> {
        let mut values = docs(self.read(&dir.join("values.yaml")).expect("values"))[0].clone();
        for p in source["helm"]["parameters"].as_array().cloned().unwrap_or_default() {
            values[p["name"].as_str().expect("name")] = p["value"].clone();
        }
        let ctx = json!({ "Values": values });
        let mut out = Vec::new();
        for (path, text) in self.files.range(dir.join("templates")..) {
            if !path.starts_with(dir.join("templates")) {
                break;
            }
            // Only Argo CD objects matter to this model; other templates (the network
            // policies) use more of Helm than it evaluates, and are rendered by the real Helm
            // in the Argo CD tier. Every rendered file parses as YAML before evaluation.
            let text = expand_ranges(text, &ctx);
            let argo = docs(&text)
                .iter()
                .any(|d| d["apiVersion"].as_str().is_some_and(|a| a.starts_with("argoproj.io/")));
            if argo {
                out.extend(docs(&eval(&text, &ctx)));
            }
        }
        out
    }

    /// What an Application's sources render, if they are in the tree.
    pub fn app_output(&self, app: &Value) -> Vec<Value> {
        let sources = app["spec"]
            .get("sources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| vec![app["spec"]["source"].clone()]);
        let mut out = Vec::new();
        for src in sources {
            let (Some(repo), Some(path)) = (src["repoURL"].as_str(), src["path"].as_str()) else { continue };
            if !self.own_repos.iter().any(|r| r == repo) {
                continue; // an upstream chart
            }
            let dir = PathBuf::from(path.trim_end_matches('/'));
            if self.files.contains_key(&dir.join("kustomization.yaml")) {
                out.extend(self.kustomize(&dir));
            } else if self.files.contains_key(&dir.join("Chart.yaml")) {
                out.extend(self.helm(&dir, &src));
            } else {
                // A directory source (not recursive): the YAML files directly in it.
                for (p, text) in self.files {
                    if p.parent() == Some(dir.as_path()) {
                        out.extend(docs(text));
                    }
                }
            }
        }
        out
    }

    /// Every object generated from the root Applications, transitively.
    pub fn evaluate(&self, roots: &[Value]) -> Vec<Generated> {
        let mut all = Vec::new();
        let mut queue: Vec<(Value, String)> = roots.iter().map(|r| (r.clone(), String::new())).collect();
        while let Some((obj, parent)) = queue.pop() {
            let name = format!(
                "{}/{}",
                obj["kind"].as_str().unwrap_or_default(),
                obj["metadata"]["name"].as_str().unwrap_or_default()
            );
            if !parent.is_empty() {
                all.push(Generated { manifest: obj.clone(), parent });
            }
            match obj["kind"].as_str() {
                Some("Application") => {
                    for child in self.app_output(&obj) {
                        queue.push((child, name.clone()));
                    }
                }
                Some("ApplicationSet") => {
                    let template = &obj["spec"]["template"];
                    for g in obj["spec"]["generators"].as_array().expect("generators") {
                        for params in generate(g) {
                            let mut app = eval_value(template, &params);
                            let m = app.as_object_mut().expect("template");
                            m.insert("apiVersion".into(), json!("argoproj.io/v1alpha1"));
                            m.insert("kind".into(), json!("Application"));
                            let ns = obj["metadata"]["namespace"].clone();
                            app["metadata"]["namespace"] = ns;
                            queue.push((app, name.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        all
    }
}

/// The repositories an Application sources.
pub fn repos(app: &Value) -> Vec<String> {
    let mut v: Vec<String> = match app["spec"].get("sources").and_then(Value::as_array) {
        Some(s) => s.iter().filter_map(|x| x["repoURL"].as_str().map(str::to_owned)).collect(),
        None => app["spec"]["source"]["repoURL"].as_str().map(str::to_owned).into_iter().collect(),
    };
    v.sort();
    v
}
