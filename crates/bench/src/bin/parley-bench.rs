//! Standalone `parley-bench`: the same options as `parley bench`.
use clap::Parser;

#[derive(Parser)]
#[command(name = "parley-bench", about = "Load generator for Parley servers")]
struct Cli {
    #[command(flatten)]
    args: parley_bench::BenchArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(parley_bench::run(cli.args))
}
