//! The devstack: the whole Bulkhead system on one machine, in one process.
//!
//! It reads `template.yaml`, opens the embedded database, builds every function through
//! the same constructors as the Lambda mains, drives triggers and listeners the way
//! Lambda's event source mappings do, and serves the HTTP API the way API Gateway does.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
#[cfg(feature = "aws")]
pub mod aws;
pub mod contracts;
pub mod explorer;
pub mod faults;
pub mod figures;
pub mod fixtures;
pub mod gateway;
pub mod host;
pub mod infra;
pub mod openapi;
pub mod pollers;
pub mod rebuild;
pub mod registry;
pub mod replay;
pub mod serve;
pub mod template;

use bulkhead::bus::Bus;
use bulkhead::store::Table;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Everything that can stop the devstack from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("template.yaml: {0}")]
    Template(String),
    #[error("function registry: {0}")]
    Registry(String),
    #[error("contracts: {0}")]
    Contract(String),
    #[error(transparent)]
    Core(#[from] bulkhead::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("token: {0}")]
    Token(String),
    #[error("binding {0}, which is not loopback, needs --allow-remote")]
    RemoteBind(SocketAddr),
    /// A replay refused: nothing changed.
    #[error("replay refused: {0}")]
    Replay(#[from] replay::Refused),
    #[error("AWS: {0}")]
    Aws(String),
    #[error("devstack: {0}")]
    Http(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to run the devstack.
#[derive(Clone, Debug)]
pub struct Config {
    pub template: PathBuf,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    pub jwt_secret: String,
    /// Caps every queue's visibility timeout, so that retries come sooner than in AWS.
    pub max_visibility_ms: Option<i64>,
    /// The first pause before a failed stream batch is retried; it doubles per retry.
    pub stream_retry_ms: u64,
    /// Faults in force from the start (services down, failure rates...).
    pub faults: faults::Plan,
    /// Run on this AWS-compatible endpoint instead of the embedded database.
    pub aws_endpoint: Option<String>,
    /// Physical names on that endpoint are `<prefix>-<logical id>`.
    pub resource_prefix: String,
    /// Serve requests whatever their `Host` and `Origin`, and allow binding an address that
    /// is not loopback. Off by default: a web page in the developer's browser could
    /// otherwise drive the unauthenticated `/_devstack/*` endpoints.
    pub allow_remote: bool,
}

impl Config {
    pub fn new(template: PathBuf, data_dir: PathBuf) -> Self {
        Config {
            template,
            data_dir,
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            jwt_secret: auth::DEFAULT_SECRET.into(),
            max_visibility_ms: None,
            stream_retry_ms: 100,
            faults: faults::Plan::default(),
            aws_endpoint: None,
            resource_prefix: "bulkhead".into(),
            allow_remote: false,
        }
    }

    /// The database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("bulkhead.db")
    }
}

/// A running devstack.
pub struct Running {
    pub url: String,
    /// Where the data lives, for the startup line.
    pub location: String,
    pub database: PathBuf,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// Stops accepting connections and lets requests in flight finish (up to
    /// [`serve::DRAIN_TIMEOUT`]), then stops every poller wherever it is, as a crash would.
    /// Nothing acknowledged is lost: messages in flight reappear after their visibility
    /// timeout.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.server.abort();
    }
}

/// Creates the template's resources at `config.aws_endpoint` and says where they are.
pub async fn provision(config: &Config) -> Result<String> {
    let template = template::Template::load(&config.template)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let db = bulkhead::embedded::Database::open(&config.database_path())?;
    match &config.aws_endpoint {
        #[cfg(feature = "aws")]
        Some(endpoint) => {
            use infra::Infra;
            Ok(
                aws::AwsInfra::provision(&template, endpoint, &config.resource_prefix, db)
                    .await?
                    .location(),
            )
        }
        _ => {
            drop((template, db));
            Err(Error::Registry(
                "provision needs --aws-endpoint and a build with --features aws".into(),
            ))
        }
    }
}

/// Starts the devstack and answers once the API is listening.
pub async fn start(config: Config) -> Result<Running> {
    if !config.bind.ip().is_loopback() {
        if !config.allow_remote {
            return Err(Error::RemoteBind(config.bind));
        }
        tracing::warn!(bind = %config.bind, "the devstack listens beyond this machine: its /_devstack endpoints need no token");
        eprintln!(
            "warning: the devstack listens on {}, beyond this machine; /_devstack/* needs no token",
            config.bind
        );
    }
    let template = template::Template::load(&config.template)?;
    std::fs::create_dir_all(&config.data_dir)?;
    if figures::install() {
        bulkhead::telemetry::figures::describe();
    }
    let database = config.database_path();
    let embedded = infra::EmbeddedInfra::open(&template, &database)?;
    let db = embedded.database();
    let infra: Arc<dyn infra::Infra> = match &config.aws_endpoint {
        None => Arc::new(embedded),
        #[cfg(feature = "aws")]
        Some(endpoint) => Arc::new(
            aws::AwsInfra::provision(&template, endpoint, &config.resource_prefix, db.clone())
                .await?,
        ),
        #[cfg(not(feature = "aws"))]
        Some(_) => {
            return Err(Error::Registry(
                "this devstack was built without the AWS backend: cargo run -p devstack --features aws".into(),
            ));
        }
    };
    let faults = Arc::new(faults::Faults::new(config.faults.clone()));

    // Every function holds a table through its alias, which a rebuild switches.
    let generations = Arc::new(rebuild::alias::Generations::load(&config.data_dir)?);
    let mut tables: HashMap<String, Arc<dyn Table>> = HashMap::new();
    let mut aliases = HashMap::new();
    for name in template.tables.keys() {
        let generation = generations.of(name);
        let table = match generation {
            1 => infra.table(name)?,
            n => infra.generation(name, n)?,
        };
        let alias = Arc::new(rebuild::alias::Alias::new(generation, table));
        tables.insert(name.clone(), alias.clone());
        aliases.insert(name.clone(), alias);
    }
    let mut buses: HashMap<String, Arc<dyn Bus>> = HashMap::new();
    for bus in &template.buses {
        buses.insert(
            bus.clone(),
            Arc::new(faults::FaultyBus::new(infra.bus(bus)?, faults.clone())),
        );
    }

    let functions = registry::Functions::build(&template, &tables, &buses, infra.mailer())?;
    let mut tasks = vec![];
    let mut streams = vec![];
    for (function, trigger) in &functions.triggers {
        for mapping in &function.streams {
            let consumer = format!("{}/{}", function.name, mapping.table);
            let feed = infra.change_feed(&consumer, &mapping.table)?;
            let (task, progress) = pollers::spawn_stream(
                infra.clone(),
                feed,
                function,
                mapping,
                trigger.clone(),
                faults.clone(),
                &config,
            );
            tasks.push(task);
            streams.push(admin::StreamConsumer {
                name: consumer,
                table: mapping.table.clone(),
                progress,
            });
        }
    }
    let mut mirrors = HashMap::new();
    for (function, listener) in &functions.listeners {
        for mapping in &function.queues {
            let queue = template.queues[&mapping.queue].clone();
            let (source, mirror) =
                rebuild::mirror::Mirrored::new(infra.queue(&queue)?, infra.clone());
            mirrors.insert(queue.name.clone(), mirror);
            tasks.push(pollers::spawn_queue(
                Arc::new(source),
                function,
                mapping,
                queue,
                listener.clone(),
                faults.clone(),
                &config,
            ));
        }
    }
    let http: HashMap<_, _> = functions
        .http
        .into_iter()
        .map(|(function, router)| (function.name, router))
        .collect();
    for (spec, ttl) in template
        .tables
        .values()
        .filter(|_| config.aws_endpoint.is_none())
    {
        if let Some(attribute) = ttl {
            tasks.push(pollers::spawn_ttl_sweeper(
                db.clone(),
                spec.clone(),
                attribute.clone(),
            ));
        }
    }

    let auth = auth::Auth::new(
        &config.jwt_secret,
        &template.jwt_issuer,
        &template.jwt_audience,
    );
    let location = infra.location();
    let rebuilder = Arc::new(rebuild::Rebuilder::new(
        &template,
        &config,
        infra.clone(),
        faults.clone(),
        rebuild::Wiring {
            aliases,
            buses,
            mirrors,
            generations,
        },
    ));
    let gateway = gateway::Gateway::new(&template, http, auth, faults, infra, streams, rebuilder)
        .allow_remote(config.allow_remote);
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = gateway.into_router();
    let server = tokio::spawn(async move {
        serve::serve(listener, app, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(Running {
        url,
        location,
        database,
        tasks,
        server,
        shutdown: Some(tx),
    })
}
