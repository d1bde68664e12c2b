//! The `mailroom` command: parse the CLI, set up logging, dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use mailroom::app::{self, Application};
use mailroom::cli::users::UserCommand;
use mailroom::config::Settings;
use mailroom::telemetry;

const ENVIRONMENT_HELP: &str = "\
Configuration comes from the environment and an optional .env file, e.g.:
  API_KEY        key for the protected routes (generated into DATA_DIR/api_key when unset)
  DATABASE_URL   sqlite://data/mailroom.db (default) or postgres://user:pass@host/db
  HOST, PORT     listen address (default 127.0.0.1:42010)
  DOMINIO        your mail domain(s), comma-separated
See the README and .env.example for every variable.";

#[derive(Parser)]
#[command(name = "mailroom", version, about = "Self-hosted mail hub for ImprovMX", after_help = ENVIRONMENT_HELP)]
struct Cli {
    /// Read variables from this file instead of ./.env (the environment still wins).
    #[arg(long, global = true, value_name = "PATH")]
    env_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhook and the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Import emails exported from the old service's MongoDB with `mongoexport`.
    ///
    /// Exit status: 0 when every document is stored (now or by an earlier run),
    /// 3 when some documents were skipped (each is reported with its line or index),
    /// 1 when the import could not finish.
    ImportMongo {
        /// The export: one document per line, or a JSON array (`--jsonArray`).
        file: PathBuf,
        /// Where to import into (default: DATABASE_URL).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Manage webmail accounts.
    #[command(subcommand)]
    User(UserCommand),
}

/// `import-mongo` finished, but skipped documents.
const EXIT_SKIPPED: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = load_env_file(cli.env_file.as_deref()) {
        eprintln!("error: {error:#}");
        return ExitCode::from(2);
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("failed to start the async runtime");
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(settings).await.map(|()| ExitCode::SUCCESS),
            Command::Migrate => migrate(settings).await.map(|()| ExitCode::SUCCESS),
            Command::ImportMongo { file, database_url } => {
                import_mongo(settings, &file, database_url).await
            }
            Command::User(command) => user(settings, command).await.map(|()| ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `.env` in the working directory is optional; a file named with `--env-file` is not.
fn load_env_file(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            dotenvy::from_path(path).with_context(|| format!("failed to read {}", path.display()))
        }
        None => match dotenvy::dotenv() {
            Ok(_) => Ok(()),
            Err(error) if error.not_found() => Ok(()),
            Err(error) => Err(error).context("failed to read .env"),
        },
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    Application::build(settings)
        .await?
        .run_until(app::shutdown_signal())
        .await
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    store.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

async fn user(settings: Settings, command: UserCommand) -> anyhow::Result<()> {
    let store = app::open_store(&settings).await?;
    store.close().await;
    let users = mailroom::store::open_users(settings.database_url.expose()).await?;
    let result = mailroom::cli::users::run(users.as_ref(), command).await;
    users.close().await;
    result
}

async fn import_mongo(
    mut settings: Settings,
    file: &std::path::Path,
    database_url: Option<String>,
) -> anyhow::Result<ExitCode> {
    if let Some(url) = database_url {
        settings.database_url = mailroom::secret::Secret::new(url);
    }
    let store = app::open_store(&settings).await?;
    let domains = settings.outbound.sender_domains.clone();
    let result = mailroom::import::mongo::import_file_in(store.clone(), file, &domains).await;
    store.close().await;
    let report = result?;
    println!("{}: {report}", file.display());
    if report.skipped.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} document(s) skipped (listed above); fix them and run the import again",
            report.skipped.len()
        );
        Ok(ExitCode::from(EXIT_SKIPPED))
    }
}
