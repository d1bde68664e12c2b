//! `mailroom user add|passwd|list|remove`: webmail accounts from the command line.

use std::io::BufRead;

use anyhow::{Context as _, bail};
use chrono::Utc;
use clap::Subcommand;

use crate::security::accounts::{generate_password, normalize_address, normalize_login};
use crate::security::passwords::Password;
use crate::store::{NewUser, Role, UserStore};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin, a random password is generated and printed once.
    Add {
        /// An email address (its mailbox is readable by the user) or a bare name.
        login: String,
        /// Sees every mailbox and manages users.
        #[arg(long)]
        admin: bool,
        /// Further addresses the user may read: aliases, or `*@domain` for a catch-all.
        #[arg(long = "address", value_name = "ADDRESS")]
        addresses: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (signs out its sessions).
    Passwd {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users, their roles and addresses.
    List,
    /// Remove a user (its mail stays).
    Remove { login: String },
}

/// Runs one command; what it prints goes to stdout.
pub async fn run(users: &dyn UserStore, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            login,
            admin,
            addresses,
            password_stdin,
        } => add(users, &login, admin, &addresses, password_stdin).await,
        UserCommand::Passwd {
            login,
            password_stdin,
        } => passwd(users, &login, password_stdin).await,
        UserCommand::List => list(users).await,
        UserCommand::Remove { login } => {
            let login = normalize_login(&login).map_err(anyhow::Error::msg)?;
            if !users.remove_user(&login).await? {
                bail!("no user {login}");
            }
            println!("removed {login}");
            Ok(())
        }
    }
}

async fn add(
    users: &dyn UserStore,
    login: &str,
    admin: bool,
    extra: &[String],
    password_stdin: bool,
) -> anyhow::Result<()> {
    let login = normalize_login(login).map_err(anyhow::Error::msg)?;
    let mut addresses = extra
        .iter()
        .map(|a| normalize_address(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    if login.contains('@') {
        addresses.push(login.clone());
    }
    addresses.sort();
    addresses.dedup();
    let (password, generated) = new_password(password_stdin)?;
    let user = NewUser {
        login: login.clone(),
        password_hash: password.hash(),
        role: if admin { Role::Admin } else { Role::User },
        addresses,
    };
    if users.add_user(&user, Utc::now()).await?.is_none() {
        bail!("a user {login} exists already (use `mailroom user passwd` to reset its password)");
    }
    println!("added {login} ({})", user.role.name());
    if let Some(text) = generated {
        println!("password: {text}");
    }
    Ok(())
}

async fn passwd(users: &dyn UserStore, login: &str, password_stdin: bool) -> anyhow::Result<()> {
    let login = normalize_login(login).map_err(anyhow::Error::msg)?;
    let (password, generated) = new_password(password_stdin)?;
    if !users
        .set_password(&login, &password.hash(), Utc::now())
        .await?
    {
        bail!("no user {login}");
    }
    println!("password changed for {login}");
    if let Some(text) = generated {
        println!("password: {text}");
    }
    Ok(())
}

async fn list(users: &dyn UserStore) -> anyhow::Result<()> {
    let all = users.users().await?;
    if all.is_empty() {
        println!("no users yet: add one with `mailroom user add EMAIL --admin`");
    }
    for user in all {
        println!(
            "{}\t{}\t{}",
            user.login,
            user.role.name(),
            user.addresses.join(",")
        );
    }
    Ok(())
}

/// The password from stdin's first line, or a generated one (returned for printing).
fn new_password(from_stdin: bool) -> anyhow::Result<(Password, Option<String>)> {
    if !from_stdin {
        let text = generate_password();
        return Ok((Password::new(&text)?, Some(text)));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("failed to read the password from standard input")?;
    let text = line.trim_end_matches(['\r', '\n']);
    Ok((Password::new(text)?, None))
}
