//! Command-line definitions (clap). Only this crate names clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Terraform-grade plan/apply for Argo CD GitOps on the Medical Informatics Platform.
#[derive(Debug, Parser)]
#[command(name = "mip", version, about, after_help = crate::exit::TABLE, propagate_version = true)]
pub struct Cli {
    /// More detail on stderr (-v: API request counts and every step; -vv and -vvv: where each
    /// secret value comes from, with its length and a salted hash — never the value).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
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

/// How to reach the cluster and where the state is.
#[derive(Debug, Args, Clone)]
pub struct ClusterArgs {
    /// The connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// The state.
    #[command(flatten)]
    pub state: StateArgs,
}

/// How to reach the cluster.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE", hide_env_values = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Timeout of one API request, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub request_timeout: u64,
}

/// Where the state is.
#[derive(Debug, Args, Clone)]
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
    /// How long the cluster state's lock outlives a holder that stopped renewing it (killed,
    /// cut off), in seconds.
    #[arg(long, env = "MIP_LOCK_TTL", default_value_t = 30, value_name = "SECONDS")]
    pub lock_ttl: u64,
    /// Payload bytes per state Secret (tests use small values to exercise chunking).
    #[arg(long, env = "MIP_STATE_CHUNK_BYTES", default_value_t = 512 * 1024, hide = true)]
    pub state_chunk_bytes: usize,
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
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
        /// Also check revisions against the Git branch: on a feature branch none may point
        /// at `main`, on `main` all must.
        #[arg(long)]
        branch_check: bool,
        /// The branch (default: read `.git/HEAD` above the inventory).
        #[arg(long, value_name = "NAME", requires = "branch_check")]
        branch: Option<String>,
        /// A rendered GitOps tree whose revisions are checked too.
        #[arg(long, value_name = "DIR", requires = "branch_check")]
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
    },
    /// Draw the dependency graph (edges mean "after").
    Graph {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Drawing format.
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
    },
    /// Show what mip would do to reach the inventory's state.
    Plan {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Cluster and state.
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Plan against the local state only, without contacting a cluster.
        #[arg(long)]
        offline: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
        /// Save the plan to FILE (versioned, sha256-hashed) for `mip apply FILE`.
        #[arg(short = 'o', long = "out", value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 2 when the plan has changes, 0 when it has none.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Character budget of the Markdown output.
        #[arg(long, default_value_t = mip_plan::render::DEFAULT_MARKDOWN_BUDGET, value_name = "CHARS")]
        markdown_budget: usize,
    },
    /// Apply a saved plan, or plan and apply (asking for confirmation on a terminal).
    Apply {
        /// A plan file from `mip plan -o FILE`; without it, mip plans first.
        plan: Option<PathBuf>,
        /// Inventory location (also used to resolve relative secret files).
        #[command(flatten)]
        inv: InventoryArgs,
        /// Cluster and state.
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// Concurrent writes at most.
        #[arg(long, default_value_t = 8, value_name = "N")]
        parallelism: usize,
        /// Seconds to wait for the objects Argo CD generates (0: don't wait).
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
        wait_timeout: u64,
        /// Regenerate the generated values of these Secrets (addresses).
        #[arg(long, value_name = "ADDRESS")]
        rotate: Vec<String>,
        /// Take ownership of fields another field manager owns (server-side apply `force`).
        #[arg(long)]
        force_conflicts: bool,
    },
    /// Compare the cluster with the inventory; exit 2 when something drifted.
    Drift {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Cluster and state.
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Delete every object mip manages (never what Argo CD owns; `default` is only forgotten).
    Destroy {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Cluster and state.
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        auto_approve: bool,
        /// Also delete namespaces, AppProjects and CRDs (their deletion takes workloads,
        /// Applications or custom resources with them).
        #[arg(long)]
        include_protected: bool,
    },
    /// Inspect the local state.
    State {
        /// What to show.
        #[command(subcommand)]
        command: StateCommand,
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
        /// Cluster and state.
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Output format (`markdown` is the text report).
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// `mip state` subcommands.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Lineage, serial and every managed address.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
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
        cluster: ClusterArgs,
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
        cluster: ClusterArgs,
    },
    /// Rebuild the state from the cluster after the store was lost: every object of the
    /// inventory that exists and carries mip's field ownership is recorded again.
    Rebuild {
        /// Inventory location.
        #[command(flatten)]
        inv: InventoryArgs,
        /// Cluster and state.
        #[command(flatten)]
        cluster: ClusterArgs,
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
    Remove {
        /// Name as in the inventory.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Inventory location and the tree to re-render.
        #[command(flatten)]
        edit: EditArgs,
    },
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
        /// Kubeconfig context mip uses to reach it.
        #[arg(long = "context", value_name = "CTX")]
        kube_context: Option<String>,
        /// Inventory location and the tree to re-render.
        #[command(flatten)]
        edit: EditArgs,
    },
    /// Remove a cluster no federation uses; asks for confirmation.
    Remove {
        /// Name as in the inventory.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Inventory location and the tree to re-render.
        #[command(flatten)]
        edit: EditArgs,
    },
}
