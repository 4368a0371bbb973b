//! The command line every example server and its tokio twin accepts:
//! `--addr HOST:PORT` and `--workers N`. Pure parsing, no runtime, so the
//! tokio twins in `benches/outside/` include it too.

/// Command-line options of an example server.
pub(crate) struct ServerArgs {
    /// Address to listen on.
    pub(crate) addr: String,
    /// Worker threads (per node on numa_rt); `None` means one per CPU.
    pub(crate) workers: Option<usize>,
}

impl ServerArgs {
    /// Parses the options after the program name; `program` names the
    /// server in the usage message, `default_addr` is used without `--addr`.
    pub(crate) fn parse(
        program: &str,
        default_addr: &str,
        argv: impl IntoIterator<Item = String>,
    ) -> Result<Self, String> {
        let mut args = ServerArgs {
            addr: default_addr.to_string(),
            workers: None,
        };
        let mut it = argv.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--addr" => args.addr = it.next().ok_or("--addr needs HOST:PORT")?,
                "--workers" => {
                    let v = it.next().ok_or("--workers needs a number")?;
                    let n: usize = v
                        .parse()
                        .map_err(|_| format!("--workers: {v:?} is not a number"))?;
                    if n == 0 {
                        return Err("--workers must be at least 1".into());
                    }
                    args.workers = Some(n);
                }
                "-h" | "--help" => {
                    return Err(format!("usage: {program} [--addr HOST:PORT] [--workers N]"));
                }
                other => return Err(format!("unknown argument {other:?} (try --help)")),
            }
        }
        Ok(args)
    }

    /// The worker count as the start-up line prints it.
    #[allow(dead_code)] // tokio_echo prints no worker count.
    pub(crate) fn workers_label(&self) -> String {
        self.workers
            .map_or_else(|| "one per CPU".to_string(), |n| n.to_string())
    }
}
