use crate::exit::Failure;
#[derive(Debug, clap::Args)]
pub struct RunArgs {}
pub fn execute(_args: RunArgs) -> Result<u8, Failure> { Ok(0) }
