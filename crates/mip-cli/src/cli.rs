//! Command-line definitions (clap). Only this crate names clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Terraform-grade plan/apply for Argo CD GitOps on the Medical Informatics Platform.
#[derive(Debug, Parser)]
#[command(name = "mip", version, about, after_help = crate::exit::TABLE, propagate_version = true)]
pub struct Cli {
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
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}
