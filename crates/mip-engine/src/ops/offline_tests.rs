//! The operations that need no cluster (render, validate, graph, apps, the inventory edits), on
//! the minimal example in a temporary directory: each asserts the typed outcome and what was
//! written to disk.

use super::apps::{Apps, AppsRequest, apps};
use super::edit::{
    Change, Consequences, EditRequest, FederationAppKind, FederationKind, NewFederation, edit,
};
use super::graph::{GraphFormat, GraphRequest, graph};
use super::render::{RenderRequest, Verdict, render};
use super::tests::Answering;
use super::validate::{ValidateRequest, validate};
use crate::load::LoadOptions;
use crate::seams::{Answer, Hook, NoHook};
use crate::{Class, Error};
use mip_core::{Diagnostics, ObjectRef};
use mip_inventory::edit::EditError;
use std::path::{Path, PathBuf};

const MINIMAL: &str = include_str!("../../../../examples/minimal/mip.yaml");

/// The minimal example in a temporary directory.
fn inventory() -> (tempfile::TempDir, LoadOptions) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("mip.yaml");
    std::fs::write(&path, MINIMAL).expect("inventory written");
    (dir, LoadOptions { inventory: path, revision: None })
}

fn render_request(load: &LoadOptions, dir: &Path, check: bool, adopt: bool) -> RenderRequest {
    RenderRequest { load: load.clone(), dir: dir.to_path_buf(), check, adopt }
}

/// Every file under `dir`, relative.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = super::render::read_tree_files(dir).expect("read").into_keys().collect();
    out.sort();
    out
}

#[test]
fn render_writes_the_tree_then_check_finds_it_up_to_date_then_out_of_date() {
    let (tmp, load) = inventory();
    let tree = tmp.path().join("tree");
    let first = render(&render_request(&load, &tree, false, false), &NoHook).expect("rendered");
    assert_eq!(first.verdict, Verdict::Written);
    assert!(first.generated > 0);
    assert_eq!(first.status.missing.len(), first.generated, "every file is new");
    assert!(first.diff.is_empty(), "nothing adopted or trimmed: {}", first.diff);
    assert_eq!(files(&tree), first.status.missing, "exactly the rendered files were written");

    let checked = render(&render_request(&load, &tree, true, false), &NoHook).expect("checked");
    assert_eq!(checked.verdict, Verdict::UpToDate, "{checked:?}");
    assert_eq!(checked.status.unchanged.len(), first.generated);

    // A generated file edited, one deleted, a stale generated one and a file of the user's.
    let edited = &first.status.missing[0];
    let deleted = &first.status.missing[1];
    std::fs::write(tree.join(edited), format!("{}# edited\n", mip_render::header("mip.yaml"))).expect("edit");
    std::fs::remove_file(tree.join(deleted)).expect("delete");
    std::fs::write(tree.join("stale.yaml"), mip_render::header("mip.yaml")).expect("stale");
    std::fs::write(tree.join("mine.txt"), "mine\n").expect("foreign");
    let checked = render(&render_request(&load, &tree, true, false), &NoHook).expect("checked");
    assert_eq!(checked.verdict, Verdict::OutOfDate);
    assert_eq!(checked.status.changed, vec![edited.clone()]);
    assert_eq!(checked.status.missing, vec![deleted.clone()]);
    assert_eq!(checked.status.stale, vec![PathBuf::from("stale.yaml")]);
    assert_eq!(checked.status.foreign, vec![PathBuf::from("mine.txt")]);
    assert!(checked.diff.contains("-# edited\n"), "{}", checked.diff);
    assert!(checked.diff.contains(&format!("+++ b/{}", deleted.display())), "{}", checked.diff);
    assert!(tree.join("stale.yaml").exists() && !tree.join(deleted).exists(), "--check wrote");

    let again = render(&render_request(&load, &tree, false, false), &NoHook).expect("rendered");
    assert_eq!(again.verdict, Verdict::Written);
    assert!(!tree.join("stale.yaml").exists(), "the stale file is removed");
    assert!(tree.join(deleted).exists() && tree.join("mine.txt").exists());
    let checked = render(&render_request(&load, &tree, true, false), &NoHook).expect("checked");
    assert_eq!(checked.verdict, Verdict::UpToDate, "{checked:?}");
}

#[test]
fn render_leaves_a_file_in_the_way_unless_adopting_it() {
    let (tmp, load) = inventory();
    let tree = tmp.path().join("tree");
    let first = render(&render_request(&load, &tree, false, false), &NoHook).expect("rendered");
    let theirs = first.status.missing[0].clone();
    std::fs::write(tree.join(&theirs), "# mine\n").expect("hand-written");

    let refused = render(&render_request(&load, &tree, false, false), &NoHook).expect("rendered");
    assert_eq!(refused.verdict, Verdict::InTheWay);
    assert_eq!(refused.status.conflicts, vec![theirs.clone()]);
    assert_eq!(std::fs::read_to_string(tree.join(&theirs)).expect("read"), "# mine\n");

    let adopted = render(&render_request(&load, &tree, false, true), &NoHook).expect("rendered");
    assert_eq!(adopted.verdict, Verdict::Written);
    assert!(adopted.diff.contains("-# mine\n"), "the diff shows what adopting changed: {}", adopted.diff);
    assert!(mip_render::is_generated(&std::fs::read_to_string(tree.join(&theirs)).expect("read")));
}

/// Records what an operation shows through the hook.
#[derive(Default)]
struct Shown(std::sync::Mutex<Vec<Consequences>>);
impl Hook for Shown {
    fn edit(&self, c: &Consequences) {
        self.0.lock().expect("not poisoned").push(c.clone());
    }
}

fn edit_request(load: &LoadOptions, change: Change) -> EditRequest {
    EditRequest { inventory: load.inventory.clone(), change }
}

#[test]
fn adding_a_federation_shows_what_comes_and_writes_the_inventory() {
    let (_tmp, load) = inventory();
    let fed = NewFederation {
        name: "federation-B".into(),
        kind: FederationKind::Local,
        cluster: None,
        remote_clusters: Vec::new(),
        apps: vec![FederationAppKind::Exareme2],
    };
    let shown = Shown::default();
    // An addition asks nobody: a confirmation that cannot be given does not stop it.
    let edited =
        edit(&edit_request(&load, Change::AddFederation(fed)), &Answering(Answer::CannotAsk), &shown)
            .expect("added");
    assert_eq!((edited.what.as_str(), edited.removal), ("federation `federation-B`", false));
    let shown = shown.0.into_inner().expect("not poisoned");
    assert_eq!(shown.len(), 1);
    let namespace: ObjectRef = "v1/Namespace/federation-b".parse().expect("an address");
    assert!(shown[0].mip.iter().any(|c| c.address == namespace), "{:?}", shown[0].mip);
    assert!(!shown[0].argo.is_empty() && !shown[0].removal);
    let text = std::fs::read_to_string(&load.inventory).expect("read");
    assert!(text.starts_with(MINIMAL) && text.contains("- name: federation-B"), "{text}");
}

#[test]
fn a_removal_is_written_only_when_confirmed() {
    let (_tmp, load) = inventory();
    let req = edit_request(&load, Change::RemoveFederation("federation-A".into()));
    let no = edit(&req, &Answering(Answer::No), &Shown::default());
    assert!(matches!(no, Err(Error::Declined { .. })), "{no:?}");
    let cannot = edit(&req, &Answering(Answer::CannotAsk), &Shown::default());
    assert!(
        matches!(&cannot, Err(e @ Error::RemovalNotConfirmed { .. }) if e.class() == Class::Safety),
        "{cannot:?}"
    );
    assert_eq!(std::fs::read_to_string(&load.inventory).expect("read"), MINIMAL, "nothing written");

    let shown = Shown::default();
    let edited = edit(&req, &Answering(Answer::Yes), &shown).expect("removed");
    assert!(edited.removal);
    let shown = shown.0.into_inner().expect("not poisoned");
    let namespace: ObjectRef = "v1/Namespace/federation-a".parse().expect("an address");
    assert!(shown[0].removal && shown[0].mip.iter().any(|c| c.address == namespace), "{shown:?}");
    let text = std::fs::read_to_string(&load.inventory).expect("read");
    assert!(!text.contains("name: federation-A"), "{text}");

    // Removing it again: refused by the edit, with the names that exist.
    let gone = edit(&req, &Answering(Answer::Yes), &Shown::default());
    assert!(matches!(&gone, Err(Error::Edit(EditError::NotFound { .. }))), "{gone:?}");
}

#[test]
fn validate_checks_the_tree_and_the_branch() {
    let (tmp, load) = inventory();
    let tree = tmp.path().join("tree");
    std::fs::create_dir(&tree).expect("a tree");
    let req = |branch: &str| ValidateRequest {
        load: load.clone(),
        tree: Some(tree.clone()),
        branch_check: true,
        branch: Some(branch.to_owned()),
    };
    let on_main = validate(&req("main"), &NoHook).expect("valid");
    assert!(!on_main.has_errors(), "{:?}", on_main.branch);
    assert_eq!(on_main.missing_files.as_ref().map(Diagnostics::is_empty), Some(true));
    let checked = on_main.branch.expect("checked");
    assert_eq!((checked.branch.as_str(), checked.offenders.is_empty()), ("main", true));
    assert_eq!(on_main.loaded.inventory.federations.len(), 1);

    let on_feature = validate(&req("feat/x"), &NoHook).expect("valid");
    assert!(on_feature.has_errors());
    let offenders = on_feature.branch.expect("checked").offenders;
    assert!(offenders.iter().all(|d| d.code == "branch-check"), "{offenders:?}");
    assert!(offenders.error_count() > 0);

    // Without `--branch`, outside any Git repository: the error says to pass it.
    let outside = ValidateRequest { branch: None, ..req("main") };
    match validate(&outside, &NoHook) {
        Err(e @ (Error::NoGitRepository(_) | Error::DetachedHead(_))) => {
            assert!(e.hint().is_some_and(|h| h.contains("--branch NAME")), "{e}");
        }
        // The temporary directory may be inside a repository: then its branch was read.
        Ok(v) => assert!(v.branch.is_some()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn graph_draws_every_object_of_the_desired_state() {
    let (_tmp, load) = inventory();
    let drawn =
        graph(&GraphRequest { load: load.clone(), format: GraphFormat::Json }, &NoHook).expect("drawn");
    let doc: serde_json::Value = serde_json::from_str(&drawn.text).expect("JSON");
    let nodes = doc["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), drawn.loaded.desired.objects.len(), "{}", drawn.text);
    let dot = graph(&GraphRequest { load, format: GraphFormat::Dot }, &NoHook).expect("drawn");
    assert!(dot.text.starts_with("digraph"), "{}", dot.text);
}

#[test]
fn apps_lists_the_catalogue_and_shows_one_app() {
    let (_tmp, load) = inventory();
    let Apps::List(list) = apps(&AppsRequest { load: load.clone(), show: None }, &NoHook).expect("listed")
    else {
        panic!("a list")
    };
    let exareme2 = list.iter().find(|a| a.name == "exareme2").expect("exareme2 is built in");
    assert_eq!((exareme2.origin, exareme2.scope), ("built-in", "federation"));
    assert_eq!(exareme2.used.len(), 1);
    assert_eq!(exareme2.used[0].at, "federation `federation-A`");
    assert_eq!(exareme2.used[0].version, exareme2.version, "not pinned: the catalogue's version");

    let shown = apps(&AppsRequest { load: load.clone(), show: Some("exareme2".into()) }, &NoHook);
    assert!(matches!(&shown, Ok(Apps::Show(a)) if **a == *exareme2), "{shown:?}");
    let unknown = apps(&AppsRequest { load, show: Some("grafana".into()) }, &NoHook);
    match unknown {
        Err(Error::UnknownApp { name, known }) => {
            assert_eq!(name, "grafana");
            assert!(known.contains(&"exareme2".to_owned()), "{known:?}");
        }
        other => panic!("{other:?}"),
    }
}
