//! Command-line definitions (clap). Only this crate names clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Terraform-grade plan/apply for Argo CD GitOps on the Medical Informatics Platform.
#[derive(Debug, Parser)]
#[command(name = "mip", version = env!("MIP_VERSION_LONG"), about, after_help = crate::exit::TABLE, propagate_version = true)]
pub struct Cli {
    /// More detail on stderr (-v: API request counts and every step; -vv and -vvv: where each
    /// secret value comes from, with its length and a salted hash — never the value).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log format on stderr: `text` for people, `json` (one object per line, notes included)
    /// for log collectors. `RUST_LOG` overrides the `-v` level (e.g. `RUST_LOG=kube=debug`).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "MIP_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: crate::logging::LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the inventory is.
#[derive(Debug, Args, Clone)]
pub struct InventoryArgs {
    /// Inventory file.
    #[arg(short, long, env = "MIP_INVENTORY", default_value = "mip.yaml", value_name = "FILE")]
    pub inventory: PathBuf,
    /// Deploy a Git branch: every revision becomes BRANCH and root Applications get its
    /// sanitised prefix.
    #[arg(long, value_name = "BRANCH")]
    pub revision: Option<String>,
}

/// How to reach the cluster and where the state is: what every command that reads the cluster
/// or the state takes. Commands that only read take no lock, so they take no lock flags either
/// (`--help` shows only what changes what they do); those that write take
/// [`LockedClusterArgs`].
#[derive(Debug, Args, Clone)]
pub struct ClusterArgs {
    /// The connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The state.
    #[command(flatten)]
    pub state: StateArgs,
}

/// [`ClusterArgs`] and the lock flags: for the commands that write the state under its lock
/// (apply, destroy, state rm, migrate and rebuild).
#[derive(Debug, Args, Clone)]
pub struct LockedClusterArgs {
    /// The connection and the state.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The lock.
    #[command(flatten)]
    pub lock: LockArgs,
}

/// `--lock-ttl`'s default.
pub const DEFAULT_LOCK_TTL: &str = "30s";
/// `--lock-timeout`'s default.
pub const DEFAULT_LOCK_TIMEOUT: &str = "0s";

/// How the state's lock is held and waited for.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Lock")]
pub struct LockArgs {
    /// How long the cluster state's lock outlives a holder that stopped renewing it (killed,
    /// cut off): `30s`, `2m`, plain seconds.
    #[arg(long, env = "MIP_LOCK_TTL", default_value = DEFAULT_LOCK_TTL, value_parser = crate::duration::parse, value_name = "DURATION")]
    pub lock_ttl: Duration,
    /// How long to wait for the state's lock while another run holds it (`0`: fail at once,
    /// exit 3): `30s`, `5m`, plain seconds.
    #[arg(long, env = "MIP_LOCK_TIMEOUT", default_value = DEFAULT_LOCK_TIMEOUT, value_parser = crate::duration::parse, value_name = "DURATION")]
    pub lock_timeout: Duration,
}

impl Default for LockArgs {
    /// The flags' defaults, for the commands that take no lock.
    fn default() -> LockArgs {
        LockArgs {
            lock_ttl: crate::duration::parse(DEFAULT_LOCK_TTL).unwrap_or(Duration::from_secs(30)),
            lock_timeout: crate::duration::parse(DEFAULT_LOCK_TIMEOUT).unwrap_or_default(),
        }
    }
}

/// How to reach the cluster.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    /// Kubeconfig file (default: `KUBECONFIG`, several files merged as kubectl merges them, then
    /// `~/.kube/config`, then the pod's ServiceAccount when run in a pod).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Timeout of one API request (`10s`, `1m`, plain seconds).
    #[arg(long, default_value = "10s", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub request_timeout: Duration,
}

/// Where the state is.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "State")]
pub struct StateArgs {
    /// Directory of the local state store.
    #[arg(long, env = "MIP_STATE_DIR", default_value = "state/store", value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Where the state lives (default: the inventory's `state.backend`, else `local`).
    #[arg(long, env = "MIP_STATE_BACKEND", value_enum, value_name = "BACKEND")]
    pub state_backend: Option<StateBackendArg>,
    /// Namespace of the cluster state's Secrets and Lease (default: the inventory's
    /// `state.namespace`, else `mip-system`).
    #[arg(long, env = "MIP_STATE_NAMESPACE", value_name = "NAMESPACE")]
    pub state_namespace: Option<String>,
    /// Name of the cluster state (default: the inventory's `state.name`, else `mip-state`).
    #[arg(long, env = "MIP_STATE_NAME", value_name = "NAME")]
    pub state_name: Option<String>,
    /// Payload bytes per state Secret (tests use small values to exercise chunking).
    #[arg(long, env = "MIP_STATE_CHUNK_BYTES", default_value_t = 512 * 1024, hide = true)]
    pub state_chunk_bytes: usize,
    /// How many operations the state's history keeps in full; older ones are folded into one
    /// summary entry (counts by operation, first and last serial and time).
    #[arg(long, env = "MIP_HISTORY_LIMIT", default_value_t = mip_engine::ops::state::DEFAULT_HISTORY_LIMIT, value_name = "N")]
    pub history_limit: usize,
}

/// What `federation remove` and `cluster remove` take.
#[derive(Debug, Args, Clone)]
pub struct RemoveArgs {
    /// Name as in the inventory.
    pub name: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Inventory location and the tree to re-render.
    #[command(flatten)]
    pub edit: EditArgs,
}

/// The inventory an editing command changes, and the tree it re-renders.
#[derive(Debug, Args, Clone)]
pub struct EditArgs {
    /// Inventory location.
    #[command(flatten)]
    pub inv: InventoryArgs,
    /// Re-render the GitOps tree in DIR after the edit (as `mip render DIR`).
    #[arg(long = "render", value_name = "DIR")]
    pub render: Option<PathBuf>,
}

/// A state backend, as `--state-backend`, `--from` and `--to` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateBackendArg {
    /// The sled store in `--state-dir` on this machine.
    Local,
    /// Secrets and a Lease in the cluster (`--state-namespace`, `--state-name`).
    Cluster,
}

/// The inventory whose `state:` section says where the state is, for commands that need
/// nothing else from it.
#[derive(Debug, Args, Clone)]
pub struct StateInventoryArgs {
    /// Inventory file; only its `state:` section is used, and only if the file exists.
    #[arg(short, long, env = "MIP_INVENTORY", default_value = "mip.yaml", value_name = "FILE")]
    pub inventory: PathBuf,
}

/// How `apply` shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressFormat {
    /// For people, on stderr.
    Text,
    /// JSON lines on stdout, for machines.
    Json,
}

/// `--wait-for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WaitForArg {
    /// The object exists.
    Exists,
    /// An Application is Synced to the revision it tracks.
    Synced,
    /// An Application is Synced and Healthy.
    Healthy,
}

/// Output format of data commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people.
    Text,
    /// The versioned JSON contract.
    Json,
    /// A pull-request comment.
    Markdown,
}

/// Output format of commands that print text or JSON only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// For people.
    Text,
    /// The versioned JSON contract.
    Json,
}

/// Output format of `mip drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DriftFormat {
    /// For people.
    Text,
    /// The versioned JSON contract.
    Json,
    /// Prometheus metrics (text exposition format), e.g. for a node-exporter textfile collector.
    Prometheus,
}

/// The flags of `mip plan`.
#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// Inventory location.
    #[command(flatten)]
    pub inv: InventoryArgs,
    /// Plan against the local state only, without contacting a cluster.
    #[arg(long)]
    pub offline: bool,
    /// Review: plan what the inventory changes against the same file at Git revision REF
    /// (read from the repository the inventory is in); no cluster and no state are used.
    #[arg(long, value_name = "REF", conflicts_with_all = ["offline", "base_inventory"])]
    pub base: Option<String>,
    /// Review: plan what the inventory changes against another inventory file.
    #[arg(long, value_name = "FILE", conflicts_with = "offline")]
    pub base_inventory: Option<PathBuf>,
    /// Plan only this object and what it depends on (an address; repeat for several).
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<String>,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value = "text",
        value_name = "FORMAT",
        help_heading = "Output"
    )]
    pub output: OutputFormat,
    /// Save the plan to FILE (versioned, sha256-hashed) for `mip apply FILE` and `mip show FILE`.
    #[arg(long = "out", value_name = "FILE", help_heading = "Output")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes, 0 when it has none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// How the Markdown output looks.
    #[command(flatten)]
    pub markdown: MarkdownArgs,
    /// Cluster and state.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The flags of `mip apply`.
#[derive(Debug, Args, Clone)]
pub struct ApplyArgs {
    /// A plan file from `mip plan --out FILE`; without it, mip plans first.
    pub plan: Option<PathBuf>,
    /// Inventory location (also used to resolve relative secret files).
    #[command(flatten)]
    pub inv: InventoryArgs,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Concurrent writes at most.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub parallelism: usize,
    /// How long apply may wait for what Argo CD reconciles, gates and final wait together
    /// (`90s`, `10m`, plain seconds). `0`: no gates and no wait: every change is written in
    /// plan order without waiting for the objects Argo CD generates.
    #[arg(long, default_value = "5m", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub wait_timeout: std::time::Duration,
    /// How far to wait for what Argo CD reconciles: the object exists; an Application is
    /// Synced to the revision it tracks; or it is also Healthy.
    #[arg(long, value_enum, default_value = "healthy", value_name = "LEVEL")]
    pub wait_for: WaitForArg,
    /// Do not ask Argo CD to refresh the root Applications mip writes (it then notices
    /// them at its next resync, 180 s by default).
    #[arg(long)]
    pub no_refresh: bool,
    /// Regenerate the generated values of these Secrets (addresses).
    #[arg(long, value_name = "ADDRESS")]
    pub rotate: Vec<String>,
    /// Take ownership of fields another field manager owns (server-side apply `force`).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Progress as text on stderr, or as JSON lines on stdout (one event per line: the
    /// plan's summary, each change started, done, failed or skipped, each readiness change
    /// of what Argo CD reconciles, the outcome).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT", help_heading = "Output")]
    pub output: ProgressFormat,
    /// Apply only this object and what it depends on (an address; repeat for several).
    #[arg(long = "target", value_name = "ADDRESS", conflicts_with = "plan")]
    pub targets: Vec<String>,
    /// Allow deleting this protected object (a namespace, a Secret, or one the inventory's
    /// `protect:` lists) without a person confirming; repeat for several.
    #[arg(long, value_name = "ADDRESS")]
    pub allow_delete: Vec<String>,
    /// Cluster and state.
    #[command(flatten)]
    pub cluster: LockedClusterArgs,
}

/// The Markdown view's options.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Output")]
pub struct MarkdownArgs {
    /// Character budget of the Markdown output.
    #[arg(long, default_value_t = mip_engine::ops::plan_views::DEFAULT_MARKDOWN_BUDGET, value_name = "CHARS")]
    pub markdown_budget: usize,
    /// Fold a Mermaid picture of the steps and what changes in them into the Markdown output.
    #[arg(long)]
    pub mermaid: bool,
}

/// The flags of `mip show`.
#[derive(Debug, Args, Clone)]
pub struct ShowArgs {
    /// A plan file from `mip plan --out FILE`.
    pub plan: PathBuf,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        value_enum,
        default_value = "text",
        value_name = "FORMAT",
        help_heading = "Output"
    )]
    pub output: OutputFormat,
    /// How the Markdown output looks.
    #[command(flatten)]
    pub markdown: MarkdownArgs,
}

/// Graph drawing format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
    /// JSON nodes and edges.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an inventory: syntax, names, references, project permissions, ordering.
    Validate {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Output format; `json` is a report of every diagnostic (file, line, column, code,
        /// severity, message, hint), written for an invalid inventory too (`"valid": false`,
        /// exit 1); schema: `docs/schema/validate.schema.json`.
        #[arg(short = 'o', long, value_enum, default_value = "text", value_name = "FORMAT")]
        output: DataFormat,
        /// Also check revisions against the Git branch: on a feature branch none may point
        /// at `main`, on `main` all must.
        #[arg(long)]
        branch_check: bool,
        /// The branch (default: read `.git/HEAD` above the inventory).
        #[arg(long, value_name = "NAME", requires = "branch_check")]
        branch: Option<String>,
        /// A rendered GitOps tree: every values, patch and `$values/` file the inventory
        /// names must exist in it; with `--branch-check` its revisions are checked too.
        #[arg(long, value_name = "DIR")]
        tree: Option<PathBuf>,
    },
    /// Write the Argo CD GitOps tree of the inventory into DIR (files mip did not generate
    /// are left alone and reported).
    Render {
        /// The tree's root (the checkout of the GitOps repository).
        dir: PathBuf,
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Write nothing; exit 1 with a unified diff on stdout when DIR is out of date.
        #[arg(long)]
        check: bool,
        /// Take over files at paths mip renders that it did not generate (a hand-written
        /// checkout): their diff is printed on stdout, then they are rewritten.
        #[arg(long, conflicts_with = "check")]
        adopt: bool,
    },
    /// Draw the dependency graph (edges mean "after").
    Graph {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Drawing format.
        #[arg(
            short = 'o',
            long = "output",
            visible_alias = "format",
            value_enum,
            default_value = "dot",
            value_name = "FORMAT"
        )]
        format: GraphFormat,
    },
    /// Show what mip would do to reach the inventory's state; with `--base`, what a change of
    /// the inventory does (for pull requests, without a cluster).
    Plan(PlanArgs),
    /// Print a saved plan (its digest verified).
    Show(ShowArgs),
    /// Apply a saved plan, or plan and apply (asking for confirmation on a terminal).
    Apply(ApplyArgs),
    /// Compare the cluster with the inventory; exit 2 when something drifted.
    Drift {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Output format.
        #[arg(
            short = 'o',
            long,
            value_enum,
            default_value = "text",
            value_name = "FORMAT",
            help_heading = "Output"
        )]
        output: DriftFormat,
        /// Only mip's own objects: leave out Argo CD's side (objects it has yet to generate,
        /// Applications out of sync or degraded, generated objects whose spec differs from the
        /// rendered tree).
        #[arg(long)]
        mip_only: bool,
        /// Cluster and state.
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Where to push the metrics of this run.
        #[command(flatten)]
        push: PushArgs,
    },
    /// Delete every object mip manages (never what Argo CD owns; `default` is only forgotten).
    Destroy {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// Also delete namespaces, AppProjects and CRDs (their deletion takes workloads,
        /// Applications or custom resources with them).
        #[arg(long)]
        include_protected: bool,
        /// How long destroy may wait, all deletions together, for deleted objects to be gone
        /// (`90s`, `10m`, plain seconds): a root Application goes only once Argo CD's
        /// application controller has deleted what it deployed. An object still there then
        /// is reported with what holds it (exit 5), and what it depends on is kept.
        #[arg(long, default_value = "5m", value_parser = crate::duration::parse, value_name = "DURATION")]
        wait_timeout: std::time::Duration,
        /// Cluster and state.
        #[command(flatten)]
        cluster: LockedClusterArgs,
    },
    /// Inspect and manage the state (local or in the cluster).
    State {
        /// What to show.
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Write a commented starter inventory (asking on a terminal for what no flag gives), or
    /// with `--from-tree DIR` the import of an existing mip-infra checkout.
    Init {
        /// The inventory to write.
        #[arg(default_value = "mip.yaml", value_name = "FILE")]
        file: PathBuf,
        /// Overwrite FILE if it exists.
        #[arg(long)]
        force: bool,
        /// Import this mip-infra checkout instead (as `mip import DIR`).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["argocd_namespace", "infra_repo", "deployments_repo", "federation"])]
        from_tree: Option<PathBuf>,
        /// The Argo CD namespace (default `argocd-mip-team`).
        #[arg(long, value_name = "NS")]
        argocd_namespace: Option<String>,
        /// The infra repository URL.
        #[arg(long, value_name = "URL")]
        infra_repo: Option<String>,
        /// The deployments repository URL (default: the infra one).
        #[arg(long, value_name = "URL")]
        deployments_repo: Option<String>,
        /// The first federation's directory name (default `federation-A`).
        #[arg(long, value_name = "NAME")]
        federation: Option<String>,
    },
    /// Read an existing mip-infra checkout into an inventory (stdout, or `--out FILE`); what it
    /// cannot express is reported on stderr.
    Import {
        /// The checkout's root (the directory holding `base/`).
        dir: PathBuf,
        /// Write the inventory to FILE instead of stdout.
        #[arg(long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// Deprecated spelling of `--out` (everywhere else `-o` is an output format).
        #[arg(short = 'o', value_name = "FILE", hide = true, conflicts_with = "out")]
        deprecated_out: Option<PathBuf>,
    },
    /// The app catalogue: the built-in app definitions merged with the inventory's `apps:`.
    Apps {
        /// What to show.
        #[command(subcommand)]
        command: AppsCommand,
    },
    /// Add or remove a federation: edits the inventory in place (comments kept).
    Federation {
        /// What to do.
        #[command(subcommand)]
        command: FederationCommand,
    },
    /// Add or remove a cluster: edits the inventory in place (comments kept).
    Cluster {
        /// What to do.
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Read the cluster and name each known Argo CD failure mode with its fix; exit 2 when
    /// something is found.
    #[command(visible_alias = "status")]
    Doctor {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Output format.
        #[arg(
            short = 'o',
            long,
            value_enum,
            default_value = "text",
            value_name = "FORMAT",
            help_heading = "Output"
        )]
        output: DataFormat,
        /// Cluster and state.
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or with `--dir` write one page per command.
    Man {
        /// Write `mip.1`, `mip-plan.1`, `mip-state-list.1`, … (one page per command) into DIR
        /// (created if missing) instead of printing the one page of `mip`.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the version, the Git commit and the build date (as `mip --version`), or with
    /// `-o json` the same as a versioned JSON document.
    Version {
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text", value_name = "FORMAT")]
        output: DataFormat,
    },
    /// Generated documentation (for mip's own docs/; hidden).
    #[command(hide = true)]
    Docs {
        /// What to print.
        #[command(subcommand)]
        command: DocsCommand,
    },
}

/// `mip docs` subcommands.
#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Print the CLI reference in Markdown (`docs/cli.md`).
    Cli,
    /// Write the JSON Schema of every JSON output into DIR (`docs/schema/`).
    Schema {
        /// The directory (created if missing).
        dir: PathBuf,
    },
}

/// `mip apps` subcommands.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Every app the inventory may list: scope, origin, version, where it runs.
    List {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text", value_name = "FORMAT")]
        output: DataFormat,
    },
    /// One app's effective definition (built-in merged with the inventory's overrides) and
    /// its version in each federation.
    Show {
        /// The app's name.
        name: String,
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value = "text", value_name = "FORMAT")]
        output: DataFormat,
    },
}

/// `mip state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Lineage, serial and every managed address.
    List {
        /// Output format.
        #[arg(
            short = 'o',
            long,
            value_enum,
            default_value = "text",
            value_name = "FORMAT",
            help_heading = "Output"
        )]
        output: DataFormat,
        /// Where the state is configured.
        #[command(flatten)]
        inv: StateInventoryArgs,
        /// Where the state is.
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// The apply history.
    History {
        /// Where the state is configured.
        #[command(flatten)]
        inv: StateInventoryArgs,
        /// Where the state is.
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// What the state records for one object.
    Show {
        /// The object's address.
        address: String,
        /// Where the state is configured.
        #[command(flatten)]
        inv: StateInventoryArgs,
        /// Where the state is.
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Forget an object (it stays in the cluster; mip no longer manages it).
    Rm {
        /// The object's address.
        address: String,
        /// Where the state is configured.
        #[command(flatten)]
        inv: StateInventoryArgs,
        /// Where the state is.
        #[command(flatten)]
        cluster: LockedClusterArgs,
    },
    /// Copy the state (lineage, serial, every entry and the history) from one backend into
    /// an empty other one, e.g. from this machine into the cluster for a team. The source is
    /// left as it was.
    Migrate {
        /// The backend to copy from.
        #[arg(long, value_enum)]
        from: StateBackendArg,
        /// The backend to copy into (it must be empty).
        #[arg(long, value_enum)]
        to: StateBackendArg,
        /// Where the state is configured.
        #[command(flatten)]
        inv: StateInventoryArgs,
        /// Cluster and both stores.
        #[command(flatten)]
        cluster: LockedClusterArgs,
    },
    /// Rebuild the state from the cluster after the store was lost: every object of the
    /// inventory that exists and carries mip's field ownership is recorded again.
    Rebuild {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Cluster and state.
        #[command(flatten)]
        cluster: LockedClusterArgs,
    },
}

/// A federation's kind, as `--kind` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FederationKindArg {
    /// All nodes in one cluster.
    Local,
    /// Remote workers joined with Submariner.
    Hybrid,
}

/// A federation app, as `--app` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FederationAppArg {
    /// The Exareme2 analytics engine.
    Exareme2,
    /// Portal, gateway and databases.
    MipStack,
    /// The local kustomize overlay of Exareme2.
    Exareme2Overlay,
}

/// `mip federation` subcommands.
#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Append a federation to the inventory and show what Argo CD will generate for it.
    Add {
        /// Name (the Git directory, e.g. `federation-B`; Kubernetes uses it lowercased).
        name: String,
        /// Local or hybrid.
        #[arg(long, value_enum)]
        kind: FederationKindArg,
        /// Cluster it deploys to (default: `in-cluster`).
        #[arg(long, value_name = "CLUSTER")]
        cluster: Option<String>,
        /// Remote cluster whose nodes join it (hybrid; repeat for several).
        #[arg(long = "remote-cluster", value_name = "CLUSTER")]
        remote_clusters: Vec<String>,
        /// Application to run (repeat for several).
        #[arg(long = "app", value_enum, value_name = "APP")]
        apps: Vec<FederationAppArg>,
        /// Inventory location and the tree to re-render.
        #[command(flatten)]
        edit: EditArgs,
    },
    /// Remove a federation from the inventory; Argo CD then deletes its applications,
    /// workloads and volumes, so this asks for confirmation.
    Remove(RemoveArgs),
}

/// `mip cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Declare a cluster Argo CD deploys to.
    Add {
        /// Name (DNS-1123 label).
        name: String,
        /// API server URL as Argo CD reaches it (https).
        #[arg(long, value_name = "URL")]
        server: String,
        /// Kubeconfig context mip uses to reach it. Without other credentials, mip registers
        /// the cluster through it as `argocd cluster add` does (ServiceAccount, role and token
        /// there; the cluster Secret here).
        #[arg(long = "context", value_name = "CTX")]
        kube_context: Option<String>,
        /// Register it with cluster-wide rights, not only in the namespaces mip creates there.
        #[arg(long, requires = "kube_context")]
        cluster_admin: bool,
        /// For a cluster mip cannot write to: Argo CD's bearer token, from this environment
        /// variable at apply time.
        #[arg(long, value_name = "VAR", conflicts_with_all = ["cluster_admin", "client_certificate_file"])]
        bearer_token_env: Option<String>,
        /// For a cluster mip cannot write to: Argo CD's client certificate (PEM file, relative
        /// to the inventory), with `--client-key-file`.
        #[arg(long, value_name = "FILE", requires = "client_key_file", conflicts_with = "cluster_admin")]
        client_certificate_file: Option<String>,
        /// The client certificate's private key (PEM file, relative to the inventory).
        #[arg(long, value_name = "FILE", requires = "client_certificate_file")]
        client_key_file: Option<String>,
        /// The cluster's CA certificate (PEM file, relative to the inventory), with a token or
        /// a client certificate.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<String>,
        /// Inventory location and the tree to re-render.
        #[command(flatten)]
        edit: EditArgs,
    },
    /// Remove a cluster no federation uses; asks for confirmation.
    Remove(RemoveArgs),
}

/// `mip drift --pushgateway …`: where the metrics go, in which group, with which credentials.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Pushgateway")]
pub struct PushArgs {
    /// Also push the metrics of this run (as `--output prometheus` prints them, plus when the
    /// fingerprint last changed) to the Pushgateway at URL (`http://` or
    /// `https://host:port[/path]`; `HTTPS_PROXY`/`NO_PROXY` apply); a failed check pushes
    /// `mip_drift_success 0`. Never put credentials in the URL.
    #[arg(long, env = "MIP_PUSHGATEWAY", value_name = "URL")]
    pub pushgateway: Option<String>,
    /// The group's `job` label.
    #[arg(long, env = "MIP_PUSHGATEWAY_JOB", default_value = "mip_drift", value_name = "NAME")]
    pub pushgateway_job: String,
    /// A grouping label beside the job, so platforms sharing a Pushgateway never overwrite each
    /// other's metrics (repeat for several); default `platform=` the inventory's infra
    /// repository URL.
    #[arg(long = "pushgateway-label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub pushgateway_labels: Vec<(String, String)>,
    /// Basic auth user; the password is read from `MIP_PUSHGATEWAY_PASSWORD`.
    #[arg(
        long,
        env = "MIP_PUSHGATEWAY_USER",
        value_name = "USER",
        conflicts_with = "pushgateway_bearer_token_file"
    )]
    pub pushgateway_user: Option<String>,
    /// A file holding a bearer token (e.g. a mounted Secret), sent as `Authorization: Bearer`.
    #[arg(long, env = "MIP_PUSHGATEWAY_BEARER_TOKEN_FILE", value_name = "FILE")]
    pub pushgateway_bearer_token_file: Option<std::path::PathBuf>,
    /// A CA certificate (PEM) to trust for an `https` Pushgateway, besides the system's.
    #[arg(long, env = "MIP_PUSHGATEWAY_CA_FILE", value_name = "FILE")]
    pub pushgateway_ca_file: Option<std::path::PathBuf>,
}

/// `KEY=VALUE`, the key a Prometheus label name.
fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or_else(|| format!("`{text}`: expected KEY=VALUE"))?;
    let valid = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with("__");
    if !valid || k == "job" {
        return Err(format!(
            "`{k}` is not a grouping label name (letters, digits, `_`; not `job`, not `__…`)"
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
}
