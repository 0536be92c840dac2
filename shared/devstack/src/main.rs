//! `devstack`: run the whole system locally, or print a token or the Lambda fixtures for it.

use clap::{Parser, Subcommand};
use devstack::{Config, auth, template::Template};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// The whole Bulkhead system in one process: no Docker, no AWS account.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Port of the HTTP API.
    #[arg(long, env = "DEVSTACK_PORT", default_value_t = 3000)]
    port: u16,
    /// Address to bind. Keep the default unless you know why; anything but loopback needs
    /// --allow-remote.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Serve requests whatever their Host and Origin, and allow --bind beyond loopback. The
    /// /_devstack endpoints need no token: only on a network you trust.
    #[arg(long)]
    allow_remote: bool,
    /// Where the embedded database lives.
    #[arg(
        long,
        env = "DEVSTACK_DATA_DIR",
        default_value = ".devstack",
        global = true
    )]
    data_dir: PathBuf,
    /// The SAM template to run.
    #[arg(long, default_value = "template.yaml", global = true)]
    template: PathBuf,
    /// Services (or `bus`) to start down; see POST /_devstack/faults.
    #[arg(long)]
    down: Vec<String>,
    /// Run on this AWS-compatible endpoint (such as moto) through the AWS adapters, instead of
    /// the embedded database. Needs a build with `--features aws`.
    #[arg(long, env = "DEVSTACK_AWS_ENDPOINT", global = true)]
    aws_endpoint: Option<String>,
    /// Prefix of the physical resource names on that endpoint.
    #[arg(long, default_value = "bulkhead", global = true)]
    resource_prefix: String,
    /// Faults to start with, as the JSON that POST /_devstack/faults takes (README: Faults).
    #[arg(long, value_parser = parse_plan)]
    faults: Option<devstack::faults::Plan>,
    /// Cap on queue visibility timeouts, in ms, so that failed messages come back sooner.
    #[arg(long)]
    max_visibility_ms: Option<i64>,
}

#[derive(Subcommand)]
enum Command {
    /// Create the template's tables, queues, bus and rules at `--aws-endpoint`, then exit.
    Provision,
    /// Print the API's OpenAPI document, generated from the services' route declarations
    /// (`cargo run -p devstack -- openapi > openapi.json`).
    Openapi,
    /// Print a bearer token that the devstack accepts.
    Token {
        #[arg(long)]
        sub: String,
        /// A Cognito group: customer, staff, merchandiser or marketing; repeat for several.
        #[arg(long)]
        role: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl: i64,
    },
    /// Write an invocation fixture for every function of the template into `--out`, made by
    /// running the system in process on a scratch database in `--data-dir`.
    Fixtures {
        #[arg(long)]
        out: PathBuf,
    },
    /// Event contracts: write every producer's schemas into `--out` (refusing a change that
    /// breaks a committed version) and into the template's schema registry, or print which
    /// consumers read each field (`--impact`).
    Contracts {
        /// The contracts folder to write, `shared/contracts`.
        #[arg(long, required_unless_present = "impact")]
        out: Option<PathBuf>,
        /// Print the impact table instead: each field of each event, and who reads it.
        #[arg(long)]
        impact: bool,
    },
    /// Replay archived events of a time window to one service's rules only, and watch it
    /// (Ctrl-C cancels): in the devstack at `--devstack`, or with `--aws-endpoint` (or
    /// `--stack-name` and the account's credentials) through EventBridge StartReplay.
    Replay(ReplayArgs),
    /// Rebuild a view blue/green in the running devstack at `--devstack`: a new generation
    /// of its tables, filled from the archive and the live events while the current one
    /// answers, then switched to; watch it to the end.
    Rebuild {
        /// The view's service, as the template names it (`CodeUri`).
        #[arg(long)]
        service: String,
        /// Keep the old generation (no longer fed) instead of dropping it.
        #[arg(long)]
        keep_old: bool,
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        devstack: String,
    },
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// The service whose rules get the events, as the template names it (`CodeUri`).
    #[arg(long, required_unless_present_any = ["watch", "cancel"])]
    service: Option<String>,
    /// Start of the window of event time (RFC 3339), inclusive.
    #[arg(long, required_unless_present_any = ["watch", "cancel"])]
    from: Option<String>,
    /// End of the window (RFC 3339), exclusive; not in the future.
    #[arg(long, required_unless_present_any = ["watch", "cancel"])]
    to: Option<String>,
    /// Only this rule of the service (a logical id); default: all its rules.
    #[arg(long)]
    rule: Option<String>,
    /// The archive (a logical id); default: the template's.
    #[arg(long)]
    archive: Option<String>,
    /// Start it and return, without watching.
    #[arg(long)]
    detach: bool,
    /// Watch this replay until it ends.
    #[arg(long, conflicts_with_all = ["service", "cancel"])]
    watch: Option<String>,
    /// Cancel this replay.
    #[arg(long, conflicts_with_all = ["service", "watch"])]
    cancel: Option<String>,
    /// The running devstack to replay in.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    devstack: String,
    /// A stack SAM deployed: replay on its EventBridge with the account's credentials.
    #[arg(long)]
    stack_name: Option<String>,
}

impl ReplayArgs {
    fn action(self) -> devstack::replay::cli::Action {
        use devstack::replay::cli::Action;
        match (self.watch, self.cancel) {
            (Some(name), _) => Action::Watch(name),
            (_, Some(name)) => Action::Cancel(name),
            _ => Action::Start {
                request: devstack::replay::Request {
                    service: self.service.unwrap_or_default(),
                    from: self.from.unwrap_or_default(),
                    to: self.to.unwrap_or_default(),
                    rule: self.rule,
                    archive: self.archive,
                },
                detach: self.detach,
            },
        }
    }
}

/// `devstack replay`: exits non-zero when the replay failed.
async fn replay(
    args: ReplayArgs,
    template: &std::path::Path,
    endpoint: Option<String>,
    prefix: String,
) -> Result<(), Box<dyn std::error::Error>> {
    use devstack::replay::cli;
    if endpoint.is_none() && args.stack_name.is_none() {
        let devstack = cli::Devstack::new(&args.devstack);
        let status = cli::on_devstack(&devstack, args.action()).await?;
        if status.state == devstack::replay::State::Failed {
            return Err(format!("replay {} failed", status.name).into());
        }
        return Ok(());
    }
    #[cfg(feature = "aws")]
    {
        use devstack::replay::eventbridge::{EventBridgeReplays, Names};
        let names = match args.stack_name.clone() {
            Some(stack) => Names::Stack(stack),
            None => Names::Prefix(prefix),
        };
        let replays = EventBridgeReplays::connect(template, endpoint.as_deref(), names).await?;
        let described = cli::on_eventbridge(&replays, args.action()).await?;
        if described.state == "FAILED" {
            return Err(format!("replay {} failed", described.name).into());
        }
        Ok(())
    }
    #[cfg(not(feature = "aws"))]
    {
        let _ = (template, prefix);
        Err("replaying on AWS needs a build with --features aws".into())
    }
}

fn parse_plan(json: &str) -> Result<devstack::faults::Plan, String> {
    let plan: devstack::faults::Plan = serde_json::from_str(json).map_err(|e| e.to_string())?;
    plan.validate()?;
    Ok(plan)
}

fn secret() -> (String, bool) {
    match std::env::var("BULKHEAD_DEV_JWT_SECRET") {
        Ok(s) if !s.is_empty() => (s, false),
        _ => (auth::DEFAULT_SECRET.to_string(), true),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", devstack::openapi::text());
        return Ok(());
    }
    let (secret, default_secret) = secret();
    if let Some(Command::Token { sub, role, ttl }) = cli.command {
        let template = Template::load(&cli.template)?;
        let auth = auth::Auth::new(&secret, &template.jwt_issuer, &template.jwt_audience);
        println!("{}", auth.token(&sub, &role, ttl)?);
        return Ok(());
    }
    if let Some(Command::Fixtures { out }) = &cli.command {
        let template = Template::load(&cli.template)?;
        std::fs::create_dir_all(out)?;
        std::fs::create_dir_all(&cli.data_dir)?;
        let fixtures = devstack::fixtures::generate(&template, &cli.data_dir).await?;
        for (function, fixture) in &fixtures {
            let file = out.join(format!("{function}.json"));
            std::fs::write(&file, serde_json::to_string_pretty(fixture)?)?;
        }
        println!("{} fixtures in {}", fixtures.len(), out.display());
        return Ok(());
    }
    if let Some(Command::Replay(args)) = cli.command {
        return replay(args, &cli.template, cli.aws_endpoint, cli.resource_prefix).await;
    }
    if let Some(Command::Rebuild {
        service,
        keep_old,
        devstack,
    }) = cli.command
    {
        let devstack = devstack::replay::cli::Devstack::new(&devstack);
        let request = devstack::rebuild::Request { service, keep_old };
        let status = devstack::rebuild::cli::run(&devstack, &request).await?;
        if status.state == devstack::rebuild::State::Failed {
            return Err(format!("rebuild {} failed", status.name).into());
        }
        return Ok(());
    }
    if let Some(Command::Contracts { out, impact }) = &cli.command {
        let template = Template::load(&cli.template)?;
        if *impact {
            std::fs::create_dir_all(&cli.data_dir)?;
            print!(
                "{}",
                devstack::contracts::impact::run(&template, &cli.data_dir)?
            );
        } else if let Some(out) = out {
            let text = std::fs::read_to_string(&cli.template)?;
            let declared = devstack::contracts::declared()?;
            let rewritten = devstack::contracts::registry::rewrite(&text, &declared)?;
            let written = devstack::contracts::write(out)?;
            if rewritten != text {
                std::fs::write(&cli.template, rewritten)?;
            }
            println!(
                "{written} schemas in {}; {} schemas in {}",
                out.display(),
                declared.len(),
                cli.template.display()
            );
        }
        return Ok(());
    }
    let provision_only = matches!(cli.command, Some(Command::Provision));
    let mut config = Config::new(cli.template, cli.data_dir);
    config.bind = SocketAddr::new(cli.bind, cli.port);
    config.jwt_secret = secret;
    config.faults = cli.faults.unwrap_or_default();
    config.faults.down.extend(cli.down);
    config.max_visibility_ms = cli.max_visibility_ms;
    config.aws_endpoint = cli.aws_endpoint;
    config.resource_prefix = cli.resource_prefix;
    config.allow_remote = cli.allow_remote;
    if provision_only {
        println!("{}", devstack::provision(&config).await?);
        return Ok(());
    }
    let running = devstack::start(config).await?;
    println!(
        "devstack: API at {} · embedded data in {}",
        running.url,
        running.database.display()
    );
    devstack::explorer::init_logging();
    if default_secret {
        tracing::warn!(
            "BULKHEAD_DEV_JWT_SECRET is not set: using the documented default secret, for local use only"
        );
    }
    tokio::signal::ctrl_c().await?;
    tracing::info!("stopping");
    running.stop().await;
    Ok(())
}
