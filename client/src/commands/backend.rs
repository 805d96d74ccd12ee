//! `notaryctl backend list`.

use crate::connect::Client;
use crate::errors::Reply;
use crate::output::{self, BackendJson};
use clap::Args;
use keyd_proto::keyd as pb;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print a JSON array of backend objects instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn list(client: &mut Client, args: &ListArgs) -> anyhow::Result<()> {
    let backends = client
        .list_backends(pb::ListBackendsRequest {})
        .await
        .reply()?
        .backends;
    if args.json {
        let list: Vec<BackendJson> = backends.iter().map(BackendJson::from).collect();
        println!("{}", output::json(&list)?);
    } else if backends.is_empty() {
        eprintln!("notary-keyd has no backends configured.");
    } else {
        print!("{}", output::backend_table(&backends));
    }
    Ok(())
}
