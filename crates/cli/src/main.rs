//! The `stratus` command: thin wrappers over the library crates. Commands
//! print for people on stdout and log on stderr; failures exit non-zero.

mod db;
mod dev;
mod init;
mod invoke;
mod keys;
mod logformat;
mod logs;
mod logwriter;
mod templates;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use clap::{Parser, Subcommand, ValueEnum};
use stratus_config::App;

/// mimalloc instead of glibc's malloc: buffers made on one worker thread
/// are freed on another all the time here (an event built by the gateway
/// task, written by the Runtime API task), and glibc then takes the other
/// arena's lock; with mimalloc a warm call costs ~10 % less CPU
/// (`docs/benchmarks.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Threads for blocking work (file reads of objects and sites, process
/// bookkeeping), at most: tokio's default of 512 let 1,000 concurrent S3
/// reads start hundreds of threads that lingered afterwards. Idle ones end
/// after a few seconds.
const BLOCKING_THREADS: usize = 64;

/// The async runtime every command runs on.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build()
        .context("starting the async runtime")
}

#[derive(Parser)]
#[command(
    name = "stratus",
    version,
    about = "API Gateway + Lambda on your own machine, in one binary"
)]
struct Cli {
    /// Log lines on stderr: text, or json (one object a line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// What `serve` and `dev` take.
#[derive(clap::Args)]
struct ServeArgs {
    /// stratus.toml, a SAM/CloudFormation template (template.yaml), or the
    /// directory holding one (stratus.toml first).
    #[arg(default_value = ".")]
    path: PathBuf,
    /// A template's parameter values, as SAM CLI takes them: Key=Value ...
    #[arg(long, value_name = "KEY=VALUE", num_args = 1..)]
    parameter_overrides: Vec<String>,
    /// A template's stack name (AWS::StackName, DescribeStacks); by
    /// default the project folder's name.
    #[arg(long)]
    stack_name: Option<String>,
    /// A template's region (AWS::Region, and what functions are told), in
    /// place of us-east-1.
    #[arg(long)]
    region: Option<String>,
    /// Refuse a template that holds resources Stratus does not run,
    /// instead of serving the rest.
    #[arg(long)]
    strict: bool,
    /// The gateway's address, in place of server.listen (IP:PORT).
    #[arg(long, value_name = "IP:PORT", conflicts_with = "port")]
    listen: Option<SocketAddr>,
    /// The gateway's port, on server.listen's address (0: any free port).
    #[arg(long)]
    port: Option<u16>,
    /// The admin listener's address, in place of server.admin_listen.
    #[arg(long, value_name = "IP:PORT")]
    admin_listen: Option<SocketAddr>,
}

/// `stratus schedule ...`.
#[derive(Subcommand)]
enum ScheduleAction {
    /// Run the schedule NAME now: its function gets the event the schedule sends.
    Run {
        /// The schedule's name (`stratus routes` lists them).
        name: String,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Serve a project: the gateway and the admin listener.
    Serve(ServeArgs),
    /// Serve a project and reload it as it changes: a function's code
    /// replaces that function's environments (Rust rebuilt; the old code
    /// serves until the new is ready, and on a failed build), a valid
    /// stratus.toml is swapped in without dropping a connection, an invalid
    /// one is reported while the old keeps serving.
    Dev(ServeArgs),
    /// Check a project and print every mistake.
    Validate {
        /// stratus.toml or the directory holding it.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Print the route table: API, stage, method, path, integration,
    /// throttle, authorizer, API key.
    Routes {
        /// stratus.toml or the directory holding it.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Write a starter project into DIR.
    Init {
        /// Where to write it (created if missing; an existing stratus.toml is never overwritten).
        #[arg(required_unless_present_any = ["list", "from"])]
        dir: Option<PathBuf>,
        /// Write the stratus.toml a SAM/CloudFormation template amounts
        /// to, beside it (the template's values resolved).
        #[arg(long, value_name = "TEMPLATE", conflicts_with_all = ["template", "list"])]
        from: Option<PathBuf>,
        /// With --from: the template's parameter values, Key=Value ...
        #[arg(long, value_name = "KEY=VALUE", num_args = 1.., requires = "from")]
        parameter_overrides: Vec<String>,
        /// What the project starts with (`--list` shows them all).
        #[arg(long, value_enum, default_value_t = init::Template::Python)]
        template: init::Template,
        /// List the templates, one line each.
        #[arg(long)]
        list: bool,
    },
    /// Print the event a function route receives for a request, as the
    /// gateway builds it: a whole API Gateway event for `stratus invoke`.
    ///
    /// e.g. `stratus invoke hello --payload "$(stratus event GET /hello/you)"`
    Event {
        /// The request's method; CONNECT, MESSAGE or DISCONNECT for a
        /// WebSocket API's path.
        method: String,
        /// The request's path, with a query string if any (`/items/1?x=2`).
        path: String,
        /// A request header, `NAME: VALUE` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// The request body: text, or @FILE to read it from a file.
        #[arg(long)]
        body: Option<String>,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Create, list or revoke API keys on the running server.
    Keys {
        #[command(subcommand)]
        action: keys::Action,
        /// stratus.toml or the directory holding it.
        #[arg(long, global = true, default_value = ".")]
        project: PathBuf,
    },
    /// Function logs from the running server: `TIME FUNCTION LINE`.
    Logs {
        /// Only this function's lines.
        function: Option<String>,
        /// Keep printing new lines as they come.
        #[arg(short, long)]
        follow: bool,
        /// Lines from this long ago on: 30s, 10m, 2h, 1d.
        #[arg(long)]
        since: Option<String>,
        /// Only lines containing this text.
        #[arg(long)]
        filter: Option<String>,
        /// Only the lines of one invocation.
        #[arg(long)]
        request_id: Option<String>,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Run a schedule now on the running server (`stratus schedule run NAME`).
    Schedule {
        #[command(subcommand)]
        action: ScheduleAction,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".", global = true)]
        project: PathBuf,
    },
    /// Drop a site's cached copies on the running server (`/docs/*`, `/*`).
    Invalidate {
        /// The site's name in stratus.toml.
        site: String,
        /// Path patterns (`*` matches any characters).
        #[arg(required = true)]
        paths: Vec<String>,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Drop a REST stage's cached answers on the running server
    /// (`stratus cache flush API STAGE`).
    Cache {
        /// `flush`.
        #[arg(value_parser = ["flush"])]
        action: String,
        /// The API's name in stratus.toml.
        api: String,
        /// The stage's name.
        stage: String,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Snapshot the project's APIs and function code as a new deployment
    /// on the running server; with --stage, move that stage to it.
    Deploy {
        /// The stage to move to the new deployment.
        #[arg(long)]
        stage: Option<String>,
        /// The API of the stage, when several APIs have a stage of that name.
        #[arg(long)]
        api: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// The deployments, and what each stage serves, from the running server.
    Deployments {
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Move a stage to a deployment (or back to `latest`) on the running
    /// server, in place: no request or connection dropped. Rollback is
    /// moving it back.
    Stage {
        /// The stage.
        name: String,
        /// A deployment's id, or `latest`.
        #[arg(long)]
        deployment: String,
        /// The API of the stage, when several APIs have a stage of that name.
        #[arg(long)]
        api: Option<String>,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// A stage's canary on the running server: set it (`--deployment ID
    /// --percent P`), promote it (the stage moves to its deployment) or
    /// remove it.
    Canary {
        /// The stage.
        stage: String,
        /// The canary's deployment (with --percent).
        #[arg(long, requires = "percent", conflicts_with_all = ["promote", "remove"])]
        deployment: Option<u32>,
        /// The share of the stage's requests it serves, 0 to 100.
        #[arg(long, requires = "deployment")]
        percent: Option<f64>,
        /// Move the stage to the canary's deployment and remove the canary.
        #[arg(long, conflicts_with = "remove")]
        promote: bool,
        /// Remove the canary.
        #[arg(long)]
        remove: bool,
        /// The API of the stage, when several APIs have a stage of that name.
        #[arg(long)]
        api: Option<String>,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Publish a function's current code and settings as a new version
    /// (Lambda's PublishVersion) on the running server.
    Publish {
        /// The function's name in stratus.toml.
        function: String,
        #[arg(long, default_value = "")]
        description: String,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Point an alias at a version, optionally sending a share of the
    /// calls to another (`--weight 3=0.1`), on the running server.
    Alias {
        /// The function's name in stratus.toml.
        function: String,
        /// The alias (`live`, `prod`...).
        name: String,
        /// The version it points at.
        #[arg(long)]
        version: u32,
        /// VERSION=SHARE: that version gets SHARE (0.0 to 1.0) of the calls.
        #[arg(long, value_name = "VERSION=SHARE")]
        weight: Option<String>,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Calls per API key, usage plan and day, from the running server.
    Usage {
        /// How many days back, today included.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// SQL on a project's database, straight to it (no server needed): a
    /// prompt, one statement (-e), or --migrate.
    Db {
        /// The database's name in stratus.toml.
        name: String,
        /// Run this one statement and print its rows.
        #[arg(short, long, value_name = "SQL", conflicts_with = "migrate")]
        execute: Option<String>,
        /// Apply the migrations not applied yet, and exit.
        #[arg(long)]
        migrate: bool,
        /// stratus.toml or the directory holding it.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Call a function once; print its result (stdout) and its logs (stderr).
    ///
    /// Goes through the running server when one answers on the project's
    /// admin listener, otherwise runs the function here.
    Invoke {
        /// The function's name in stratus.toml.
        function: String,
        /// The event: JSON, or @FILE to read it from a file.
        #[arg(long, default_value = "{}")]
        payload: String,
        /// stratus.toml or the directory holding it.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `invoke` prints the function's own logs; server logs would repeat them.
    let quiet = matches!(
        cli.command,
        Command::Invoke { .. }
            | Command::Logs { .. }
            | Command::Keys { .. }
            | Command::Usage { .. }
            | Command::Cache { .. }
            | Command::Publish { .. }
            | Command::Deploy { .. }
            | Command::Deployments { .. }
            | Command::Canary { .. }
            | Command::Stage { .. }
            | Command::Alias { .. }
            | Command::Db { .. }
    );
    let _log_writer = init_tracing(cli.log_format, if quiet { "warn" } else { "info" });
    let result = match cli.command {
        Command::Serve(args) => serve(args, false),
        Command::Dev(args) => serve(args, true),
        Command::Validate { path } => load(&path).map(|app| {
            let routes: usize = app.apis.iter().map(|a| a.routes.len()).sum();
            println!(
                "{}: ok ({}, {}, {})",
                app.file.display(),
                count(app.functions.len(), "function"),
                count(app.apis.len(), "API"),
                count(routes, "route")
            );
        }),
        Command::Db {
            name,
            execute,
            migrate,
            project,
        } => db::run(&name, execute.as_deref(), migrate, &project),
        Command::Routes { path } => load(&path).map(|app| print!("{}", routes_table(&app))),
        Command::Event {
            method,
            path,
            headers,
            body,
            project,
        } => event(&project, method, path, &headers, body.as_deref()),
        Command::Init {
            from: Some(from),
            dir,
            parameter_overrides,
            ..
        } => templates::init_from(&from, dir.as_deref(), parameter_overrides),
        Command::Init {
            dir,
            template,
            list,
            ..
        } => match dir {
            Some(dir) if !list => init::write(&dir, template),
            _ => {
                print!("{}", init::Template::list());
                Ok(())
            }
        },
        Command::Keys { action, project } => keys::run(&project, action),
        Command::Usage { days, project } => keys::usage(&project, days),
        Command::Schedule {
            action: ScheduleAction::Run { name },
            project,
        } => admin_post(
            &project,
            "events",
            &format!("/stratus/schedules/{name}/run"),
            serde_json::json!({}),
            &format!("schedule {name} ran"),
        ),
        Command::Invalidate {
            site,
            paths,
            project,
        } => admin_post(
            &project,
            "cloudfront",
            "/stratus/invalidate",
            serde_json::json!({ "site": site, "paths": paths }),
            &format!("invalidated {} in site {site:?}", paths.join(" ")),
        ),
        Command::Publish {
            function,
            description,
            project,
        } => publish(&project, &function, &description),
        Command::Deploy {
            stage,
            api,
            description,
            project,
        } => deploy(&project, stage, api, &description),
        Command::Deployments { project } => deployments(&project),
        Command::Canary {
            stage,
            deployment,
            percent,
            promote,
            remove,
            api,
            project,
        } => {
            let action = match (promote, remove, deployment) {
                (true, _, _) => "promote",
                (_, true, _) => "remove",
                (_, _, Some(_)) => "set",
                _ => {
                    eprintln!("say --deployment ID --percent P, --promote or --remove");
                    return ExitCode::from(2);
                }
            };
            admin_post(
                &project,
                "apigateway",
                "/stratus/canaries",
                serde_json::json!({ "stage": stage, "api": api, "action": action, "deployment": deployment, "percent": percent }),
                &format!("canary of {stage}: {action} done"),
            )
        }
        Command::Stage {
            name,
            deployment,
            api,
            project,
        } => admin_post(
            &project,
            "apigateway",
            "/stratus/stages",
            serde_json::json!({ "stage": name, "api": api, "deployment": deployment }),
            &format!("stage {name} now serves deployment {deployment}"),
        ),
        Command::Alias {
            function,
            name,
            version,
            weight,
            project,
        } => alias(&project, &function, &name, version, weight.as_deref()),
        Command::Cache {
            action: _,
            api,
            stage,
            project,
        } => admin_post(
            &project,
            "apigateway",
            "/stratus/cache/flush",
            serde_json::json!({ "api": api, "stage": stage }),
            &format!("flushed the cache of {api}/{stage}"),
        ),
        Command::Logs {
            function,
            follow,
            since,
            filter,
            request_id,
            project,
        } => logs::run(
            &project,
            logs::Options {
                function,
                follow,
                since,
                filter,
                request_id,
            },
        ),
        Command::Invoke {
            function,
            payload,
            path,
        } => invoke::run(&path, &function, &payload),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `stratus invalidate SITE PATH...`: through the running server.
/// `stratus deploy`: CreateDeployment on the running server.
fn deploy(
    project: &std::path::Path,
    stage: Option<String>,
    api: Option<String>,
    description: &str,
) -> anyhow::Result<()> {
    let app = load(project)?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        let body = serde_json::json!({ "description": description, "stage": stage, "api": api });
        let d = keys::call(
            &app,
            "apigateway",
            "POST",
            "/stratus/deployments",
            Some(body),
        )
        .await?;
        let versions: Vec<String> = d["functions"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(f, v)| format!("{f}:{v}"))
            .collect();
        println!("deployment {} ({})", d["id"], versions.join(", "));
        if let Some(st) = d["stage"].as_str() {
            eprintln!("stage {st} now serves it");
        }
        Ok(())
    })
}

/// `stratus deployments`: the list, and where each stage points.
fn deployments(project: &std::path::Path) -> anyhow::Result<()> {
    let app = load(project)?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        let v = keys::call(&app, "apigateway", "GET", "/stratus/deployments", None).await?;
        let mut rows =
            vec![["DEPLOYMENT", "CREATED", "FUNCTIONS", "DESCRIPTION"].map(str::to_owned)];
        for d in v["deployments"].as_array().into_iter().flatten() {
            let created =
                chrono::DateTime::from_timestamp_millis(d["created"].as_i64().unwrap_or(0))
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
            let functions: Vec<String> = d["functions"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(f, n)| format!("{f}:{n}"))
                .collect();
            rows.push([
                d["id"].to_string(),
                created,
                functions.join(" "),
                d["description"].as_str().unwrap_or("").to_owned(),
            ]);
        }
        print!("{}", keys::table(&rows));
        let mut stages = vec![["API", "STAGE", "SERVES"].map(str::to_owned)];
        for st in v["stages"].as_array().into_iter().flatten() {
            let mut serves = st["deployment"].as_str().unwrap_or("?").to_owned();
            if let Some(c) = st["canary"].as_object() {
                let percent = c["percent"].as_f64().unwrap_or(0.0);
                serves.push_str(&format!(" (canary {} at {percent}%)", c["deployment"]));
            }
            stages.push([
                st["api"].as_str().unwrap_or("").to_owned(),
                st["stage"].as_str().unwrap_or("").to_owned(),
                serves,
            ]);
        }
        println!();
        print!("{}", keys::table(&stages));
        Ok(())
    })
}

/// `stratus publish`: PublishVersion on the running server.
fn publish(project: &std::path::Path, function: &str, description: &str) -> anyhow::Result<()> {
    let app = load(project)?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        let path = format!("/2015-03-31/functions/{function}/versions");
        let body = serde_json::json!({ "Description": description });
        let v = keys::call(&app, "lambda", "POST", &path, Some(body)).await?;
        println!(
            "{function}: version {}",
            v["Version"].as_str().unwrap_or("?")
        );
        eprintln!(
            "call it as {function}:{} (routes, the Invoke API)",
            v["Version"].as_str().unwrap_or("?")
        );
        Ok(())
    })
}

/// `stratus alias`: UpdateAlias, or CreateAlias for a new one.
fn alias(
    project: &std::path::Path,
    function: &str,
    name: &str,
    version: u32,
    weight: Option<&str>,
) -> anyhow::Result<()> {
    let app = load(project)?;
    let mut body = serde_json::json!({ "Name": name, "FunctionVersion": version.to_string() });
    if let Some(w) = weight {
        let (v, share) = w
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--weight {w}: expected VERSION=SHARE, e.g. 3=0.1"))?;
        let share: f64 = share
            .parse()
            .map_err(|_| anyhow::anyhow!("--weight {w}: SHARE is a number from 0.0 to 1.0"))?;
        body["RoutingConfig"] = serde_json::json!({ "AdditionalVersionWeights": { v: share } });
    } else {
        body["RoutingConfig"] = serde_json::json!({ "AdditionalVersionWeights": {} });
    }
    let rt = crate::runtime()?;
    rt.block_on(async {
        let one = format!("/2015-03-31/functions/{function}/aliases/{name}");
        let updated = keys::call(&app, "lambda", "PUT", &one, Some(body.clone())).await;
        if updated.is_err() {
            let all = format!("/2015-03-31/functions/{function}/aliases");
            keys::call(&app, "lambda", "POST", &all, Some(body)).await?;
        }
        println!(
            "{function}:{name} → version {version}{}",
            weight.map(|w| format!(" ({w})")).unwrap_or_default()
        );
        Ok(())
    })
}

/// One signed POST to the running server's admin API; `done` on success.
fn admin_post(
    project: &std::path::Path,
    service: &str,
    path: &str,
    body: serde_json::Value,
    done: &str,
) -> anyhow::Result<()> {
    let app = load(project)?;
    let rt = crate::runtime()?;
    rt.block_on(async {
        keys::call(&app, service, "POST", path, Some(body)).await?;
        eprintln!("{done}");
        Ok(())
    })
}

/// `stratus event`: the event, pretty-printed, on stdout; which function
/// gets it, on stderr.
fn event(
    project: &std::path::Path,
    method: String,
    path_and_query: String,
    headers: &[String],
    body: Option<&str>,
) -> anyhow::Result<()> {
    let app = load(project)?;
    let headers = headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .with_context(|| format!("--header {h:?}: expected NAME: VALUE"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body = body.map(text_or_file).transpose()?.unwrap_or_default();
    let req = stratus_gateway::SampleRequest {
        method,
        path_and_query,
        headers,
        body,
    };
    let (function, event) = stratus_gateway::event_for(&app, &req).map_err(anyhow::Error::msg)?;
    let pretty: serde_json::Value = serde_json::from_slice(&event)?;
    println!("{}", serde_json::to_string_pretty(&pretty)?);
    eprintln!("(the event function {function:?} receives)");
    Ok(())
}

/// An argument's bytes: the text itself, or a file's for `@FILE`.
pub(crate) fn text_or_file(arg: &str) -> anyhow::Result<Vec<u8>> {
    match arg.strip_prefix('@') {
        Some(file) => std::fs::read(file).with_context(|| format!("cannot read {file}")),
        None => Ok(arg.as_bytes().to_vec()),
    }
}

/// `1 route`, `2 routes`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// A failure already shown to the user in full (config mistakes, a
/// function's error on stdout): the command exits 1 and prints no more.
#[derive(Debug)]
pub(crate) struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reported above")
    }
}

impl std::error::Error for Reported {}

/// Logs go to stderr through a background writer thread, so that a request
/// never waits on a terminal or a pipe (one access log line per request).
/// The guard flushes what is left when `main` returns.
/// The target of the lines that say where Stratus listens: shown at any
/// `STRATUS_LOG` level (a user who quiets the access lines still needs
/// the addresses).
const READY: &str = "stratus::ready";

fn init_tracing(format: LogFormat, default_level: &str) -> logwriter::FlushGuard {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("STRATUS_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let filter = filter.add_directive(format!("{READY}=info").parse().expect("a valid directive"));
    let (writer, guard) = logwriter::BatchedStderr::start();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .event_format(logformat::TextLine)
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

/// Loads a project, printing every mistake to stderr.
pub(crate) fn load(path: &std::path::Path) -> anyhow::Result<App> {
    let mut app = load_full(path, &templates::Options::default())?.0;
    // A server of this project started with other addresses (`--port`,
    // `--admin-listen`) is the one the client commands talk to.
    if let Some((gateway, admin)) = running_server(&app.server.data_dir) {
        app.server.listen = gateway;
        app.server.admin_listen = admin;
    }
    Ok(app)
}

/// Where a running `stratus serve` of a project records its addresses.
fn server_record(data_dir: &Path) -> PathBuf {
    data_dir.join("server.json")
}

/// The gateway and admin addresses the project's running server
/// recorded, if that server is still alive.
fn running_server(data_dir: &Path) -> Option<(SocketAddr, SocketAddr)> {
    let text = std::fs::read_to_string(server_record(data_dir)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let pid = v["pid"].as_u64()?;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return None;
    }
    Some((
        v["gateway"].as_str()?.parse().ok()?,
        v["admin"].as_str()?.parse().ok()?,
    ))
}

/// `load`, and the template the project came from, if it did
/// (`templates.rs`).
fn load_full(
    path: &std::path::Path,
    options: &templates::Options,
) -> anyhow::Result<(App, Option<stratus_template::Project>)> {
    let loaded = match templates::template_of(path) {
        Some(file) => templates::load(&file, options),
        None => stratus_config::load(path)
            .and_then(templates::with_openapi)
            .map(|app| (app, None)),
    };
    loaded.map_err(|errors| {
        eprintln!("{errors}");
        let n = errors.0.len();
        eprintln!("{n} error{}", if n == 1 { "" } else { "s" });
        anyhow::Error::new(Reported)
    })
}

fn serve(args: ServeArgs, watch: bool) -> anyhow::Result<()> {
    let ServeArgs {
        path,
        parameter_overrides,
        stack_name,
        region,
        strict,
        listen,
        port,
        admin_listen,
    } = args;
    let options = templates::Options {
        overrides: parameter_overrides,
        stack_name,
        region,
        strict,
    };
    let (mut app, template) = load_full(&path, &options)?;
    if let Some(listen) = listen {
        app.server.listen = listen;
    }
    if let Some(port) = port {
        app.server.listen.set_port(port);
    }
    if let Some(admin) = admin_listen {
        // The rule stratus.toml's admin_listen follows (docs/config.md).
        anyhow::ensure!(
            app.server.verify_signatures || admin.ip().is_loopback(),
            "--admin-listen {admin}: reachable from other machines, and without [server.credentials] the admin APIs accept any credentials; set [server.credentials] or listen on 127.0.0.1"
        );
        app.server.admin_listen = admin;
    }
    let rt = crate::runtime()?;
    // Absolute, as the watcher reports paths.
    let absolute = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let project_dir = absolute(&app.project_dir);
    let data_dir = absolute(&app.server.data_dir);
    // Function URLs, printed with the listener's address once it is bound.
    let urls: Vec<(String, String, String)> = app
        .apis
        .iter()
        .filter_map(|a| {
            let u = a.function_url.as_ref()?;
            Some((u.target.clone(), a.id.clone(), a.base_path.clone()))
        })
        .collect();
    rt.block_on(async move {
        let region = app.server.region.clone();
        let mut server = stratus_server::Server::bind(app).await?;
        // A template runs as a stack: its outputs with the local URLs.
        let gateway = server.gateway_addr();
        let localized = |t: &stratus_template::Project, v: &str| t.localize(v, gateway);
        if let Some(t) = &template {
            let stack_name = &t.stack_name;
            server.set_stack(stratus_admin::StackInfo {
                id: format!(
                    "arn:aws:cloudformation:{region}:000000000000:stack/{stack_name}/00000000-0000-0000-0000-000000000000"
                ),
                name: stack_name.clone(),
                description: t.description.clone(),
                created_ms: chrono::Utc::now().timestamp_millis(),
                outputs: t
                    .outputs
                    .iter()
                    .map(|o| (o.name.clone(), localized(t, &o.value), o.description.clone()))
                    .collect(),
                resources: t.resources.clone(),
            });
        }
        // SIGHUP reloads (`serve` and `dev`); `dev` also watches the files.
        let (reload_tx, reloads) = tokio::sync::mpsc::channel(4);
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        let on_hup = reload_tx.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP received: reloading");
                if on_hup.send(()).await.is_err() {
                    return;
                }
            }
        });
        let _watcher = if watch {
            let w = dev::watch(&project_dir, data_dir.clone(), reload_tx)?;
            tracing::info!(target: READY, "watching {} for changes", project_dir.display());
            Some(w)
        } else {
            None
        };
        // Always printed, whatever STRATUS_LOG says (see `init_tracing`).
        tracing::info!(target: READY, "gateway listening on http://{}", server.gateway_addr());
        tracing::info!(target: READY, "admin listening on http://{}", server.admin_addr());
        tracing::info!(
            target: READY,
            "dashboard on http://{}/ (metrics: /metrics; logs: stratus logs -f)",
            server.admin_addr()
        );
        for (target, id, mount) in &urls {
            let gw = server.gateway_addr();
            tracing::info!(
                target: READY,
                "function URL of {target}: http://{gw}{mount}/ (and http://{id}.lambda-url.localhost:{}/)",
                gw.port()
            );
        }
        // A template's Outputs, its APIs' AWS URLs shown as the local ones.
        if let Some(t) = &template {
            let stack_name = &t.stack_name;
            for o in &t.outputs {
                tracing::info!(target: READY, "output {} = {}", o.name, localized(t, &o.value));
            }
            tracing::info!(
                target: READY,
                "stack {stack_name}: DescribeStacks and ListStackResources on http://{}",
                server.admin_addr()
            );
        }
        // Recorded for the client commands (`keys`, `logs`, `invoke`, ...),
        // removed when the server stops.
        let record = server_record(&data_dir);
        let addresses = serde_json::json!({
            "pid": std::process::id(),
            "gateway": server.gateway_addr().to_string(),
            "admin": server.admin_addr().to_string(),
        });
        if let Err(e) = std::fs::create_dir_all(&data_dir)
            .and_then(|()| std::fs::write(&record, addresses.to_string()))
        {
            tracing::warn!("cannot record the server's addresses in {}: {e}", record.display());
        }
        let ran = server.run_reloading(shutdown_signal(), reloads).await;
        let _ = std::fs::remove_file(&record);
        ran
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}

fn routes_table(app: &App) -> String {
    let mut rows = vec![stratus_config::RouteRow::HEADER.map(str::to_owned)];
    // What each stage serves: the working tree, or a deployment (whose
    // routes name the versions it froze).
    let served = stratus_runtime::deployments::Deployments::new(&app.server.data_dir)
        .compose(app)
        .map(|(composed, _)| composed)
        .unwrap_or_else(|e| {
            eprintln!("warning: {e}");
            app.clone()
        });
    rows.extend(served.route_rows().into_iter().map(|r| r.cells()));
    let mut out = keys::table(&rows);
    if !app.apis.is_empty() {
        // Every API at its own host, as on AWS (docs/config.md).
        let port = app.server.listen.port();
        let mut hosts = vec![["API", "HOST", "AT THE LISTENER'S PATHS"].map(str::to_owned)];
        hosts.extend(app.apis.iter().map(|a| {
            [
                a.name.clone(),
                if a.function_url.is_some() {
                    format!("{}.lambda-url.localhost:{port}", a.id)
                } else {
                    format!("{}.execute-api.localhost:{port}", a.id)
                },
                if a.host_only { "no" } else { "yes" }.to_owned(),
            ]
        }));
        out.push('\n');
        out.push_str(&keys::table(&hosts));
    }
    if !app.schedules.is_empty() {
        let now = chrono::Utc::now();
        let mut rows = vec![[
            "SCHEDULE",
            "FUNCTION",
            "EXPRESSION",
            "TIME ZONE",
            "NEXT RUN",
        ]
        .map(str::to_owned)];
        rows.extend(app.schedules.iter().map(|s| {
            let next = match s.enabled {
                false => "disabled".to_owned(),
                true => s.parsed.next_after(now, now, s.timezone).map_or_else(
                    || "never".to_owned(),
                    |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
                ),
            };
            [
                s.name.clone(),
                s.target.clone(),
                s.expression.clone(),
                s.timezone.name().to_owned(),
                next,
            ]
        }));
        out.push('\n');
        out.push_str(&keys::table(&rows));
    }
    if !app.databases.is_empty() {
        let mut dbs = vec![["DATABASE", "ENGINE", "DATA API ARN"].map(str::to_owned)];
        dbs.extend(app.databases.iter().map(|d| {
            [
                d.name.clone(),
                d.engine_name().to_owned(),
                d.arn(&app.server.region),
            ]
        }));
        out.push('\n');
        out.push_str(&keys::table(&dbs));
    }
    out
}
